"""A Snowflake client for the tests, run in the fakesnow venv (it has snowflake-connector-python;
the project's .venv cannot: fakesnow pins duckdb~=2.0 and sqlglot~=30.22).

    <fakesnow venv>/bin/python snowflake_client.py http://127.0.0.1:PORT DATABASE

Reads one JSON string (a SQL statement) per line on stdin, answers one JSON line on stdout:
{"rows": [[...], ...]} or {"error": "..."}. Decimals travel as {"decimal": "1.23"} and
datetimes/dates as {"datetime": iso} / {"date": iso}, so nothing is rounded on the way.
"""

import datetime
import decimal
import json
import sys
from urllib.parse import urlsplit

import snowflake.connector


def encode(value):
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    return value


def main(url: str, database: str) -> None:
    parts = urlsplit(url)
    con = snowflake.connector.connect(
        account="fakesnow",
        user="checker",
        password="-",
        database=database,
        host=parts.hostname,
        port=parts.port,
        protocol=parts.scheme,
        session_parameters={"TIMEZONE": "UTC"},
    )
    for line in sys.stdin:
        sql = json.loads(line)
        try:
            cur = con.cursor()
            cur.execute(sql)
            rows = [[encode(v) for v in row] for row in cur.fetchall()] if cur.description else []
            answer = {"rows": rows}
        except Exception as exc:  # noqa: BLE001 - any failure is the answer: the test decides
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
