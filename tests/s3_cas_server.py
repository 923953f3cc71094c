"""A real S3 API server on 127.0.0.1 whose conditional writes are atomic: moto, one request at a time.

moto 5.2.5 answers ``If-Match`` / ``If-None-Match: *`` on PutObject (412 when they fail), but it
checks the condition and stores the object in two steps without a lock (``moto/s3/responses.py``
``put_object``: ``backend.get_object`` ... ``backend.put_object``), while its werkzeug server
handles requests on concurrent threads. Two racing conditional PUTs could then both pass, which real
S3 never allows. This server wraps moto's WSGI app in a lock, so every request runs alone and the
compare-and-swap is atomic as S3 documents it. It runs in its own process (its own GIL), started by
:class:`CasS3Server`; ``python tests/s3_cas_server.py`` prints ``port N`` once it listens.

    with CasS3Server() as s3:
        s3.create_bucket("tokens")
        env = {**os.environ, **s3.env}     # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import typing as t

ACCESS_KEY = "testing-key-id"
SECRET_KEY = "testing-secret-key"  # moto accepts any
REGION = "us-east-1"


def serialised(app: t.Callable) -> t.Callable:
    """WSGI middleware: one request at a time, body included."""
    lock = threading.Lock()

    def wrapper(environ: dict, start_response: t.Callable) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return wrapper


def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the server in this process until killed; print ``port N`` when listening."""
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    app = serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


class CasS3Server:
    """The server above as a child process, with the standard AWS variables that point at it."""

    def __init__(self) -> None:
        self.port = 0
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> t.Any:
        import boto3  # noqa: PLC0415

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def start(self) -> CasS3Server:
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        self._proc = subprocess.Popen(
            [sys.executable, __file__], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            self.stop()
            raise RuntimeError("moto S3 server did not start (pip install 'moto[server]')")
        self.port = int(line[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> CasS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    serve()
