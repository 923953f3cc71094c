"""The `tap-freshbooks` console script: the SDK's Singer CLI, plus `auth login` and `reconcile`.

The entry point sits above both the tap (tap.py) and the reconciler (reconcile*.py, which builds a
tap itself), so neither imports the other's command line. singer-sdk and the tap are imported only
once the command needs them: a plain ``--discover`` is answered from the packaged catalog
(packaged_catalog.py), which is what Meltano asks before every run it has no cached catalog for.
"""

from __future__ import annotations

import sys

import click

from tap_freshbooks import config_files, packaged_catalog


@click.group(name="auth", help="Authorize tap-freshbooks with FreshBooks (OAuth 2.0).")
def auth_group() -> None:
    pass


@auth_group.command(name="login", help="Run the authorization-code flow and fill the token store.")
@click.option("--config", "config_paths", multiple=True, help="Config JSON file(s), or ENV.")
@click.option("--paste", is_flag=True, help="Paste the redirected URL instead of a local listener.")
def auth_login(config_paths: tuple[str, ...], paste: bool) -> None:
    from freshbooks_auth.login import login_command  # noqa: PLC0415
    from freshbooks_auth.settings import DEFAULT_API_URL, DEFAULT_AUTH_URL  # noqa: PLC0415
    from tap_freshbooks.tap import read_cli_config  # noqa: PLC0415

    config = read_cli_config(config_paths)
    for key, value in (
        ("api_url", DEFAULT_API_URL),
        ("auth_url", DEFAULT_AUTH_URL),
    ):
        config.setdefault(key, value)
    sys.exit(login_command(config, paste))


def cli() -> None:
    """Console script: the SDK's Singer CLI, plus `auth login` and `reconcile`, with one-line errors."""
    argv = sys.argv[1:]
    if packaged_catalog.answer_discover(argv):
        return
    from singer_sdk.exceptions import ConfigValidationError, FatalAPIError  # noqa: PLC0415

    from tap_freshbooks import cli_output  # noqa: PLC0415
    from tap_freshbooks.errors import ConfigError, FreshBooksError  # noqa: PLC0415
    from tap_freshbooks.tap import TapFreshBooks  # noqa: PLC0415

    if argv[:1] == ["auth"]:
        auth_group.main(args=argv[1:], prog_name="tap-freshbooks auth")  # exits (click's standalone mode)
    if "reconcile" in argv:
        from tap_freshbooks.reconcile import main as reconcile_main  # noqa: PLC0415
        from tap_freshbooks.reconcile import subcommand_args  # noqa: PLC0415

        if (reconcile_args := subcommand_args(argv)) is not None:
            sys.exit(reconcile_main(reconcile_args))
    command = TapFreshBooks.cli  # sets up the SDK's logging (SINGER_SDK_LOG_CONFIG) first
    command.epilog = cli_output.HELP_EPILOG
    if "--help" not in argv:
        for path in config_files.config_paths(argv):
            if problem := config_files.config_file_problem(path):
                cli_output.fail(problem, 2)
    try:
        command.main(args=argv, prog_name="tap-freshbooks")
    except ConfigError as exc:
        cli_output.fail(f"configuration error: {exc}", 2)
    except FreshBooksError as exc:
        cli_output.fail(str(exc), 1)
    except ConfigValidationError as exc:
        details = "; ".join(str(e) for e in (exc.errors or [])) or str(exc)
        cli_output.fail(
            f"configuration error: {details} (settings are listed by `tap-freshbooks --about`)", 2
        )
    except FatalAPIError as exc:
        cli_output.fail(f"FreshBooks API error: {exc}", 1)


if __name__ == "__main__":
    cli()
