"""``sfbulk load`` and ``sfbulk extract``: thin click commands over :mod:`sfbulk.bulk`.

Connection settings come from flags, then ``SFBULK_*`` environment variables, then a small YAML
config file (``--config``, or ``SFBULK_CONFIG``), in that order of precedence. Secrets are best
given through the environment or the config file (mode 0600), never on a shared command line.

Exit status: 0 every row loaded (or the extract completed); 1 some rows failed (see the error
file); 2 bad usage or input; 3 the job could not complete (API error, poll timeout, network);
130 / 143 stopped by SIGINT / SIGTERM. After 2 (mid-file), 3, 130 and 143 the journal next to the
result files is kept, and running the same command again resumes the job (docs/bulk.md).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from sfbulk.bulk.load import Progress
from sfbulk.cli import summary as json_summary
from sfbulk.cli.settings import registry_key_option
from sfbulk.errors import (
    BulkInputError,
    BulkInterrupted,
    ConfigError,
    ParameterError,
    RegistryError,
    SfBulkError,
)

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.registry import Registry

log = logging.getLogger("sfbulk.cli.bulk")

EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2
EXIT_JOB_FAILED = 3

MAX_HTTP_TIMEOUT = 86_400.0  # the connector's own bound on init's timeout

#: option name -> (init parameter, environment variable, config-file key)
CONNECTION_SETTINGS = {
    "api_url": ("apiUrl", "SFBULK_API_URL", "api_url"),
    "api_version": ("apiVersion", "SFBULK_API_VERSION", "api_version"),
    "access_token": ("accessToken", "SFBULK_ACCESS_TOKEN", "access_token"),
    "refresh_token": ("refreshToken", "SFBULK_REFRESH_TOKEN", "refresh_token"),
    "client_id": ("clientId", "SFBULK_CLIENT_ID", "client_id"),
    "client_secret": ("clientSecret", "SFBULK_CLIENT_SECRET", "client_secret"),
    "token_endpoint": ("tokenEndpointHostname", "SFBULK_TOKEN_ENDPOINT", "token_endpoint"),
    "ca_file": ("caFile", "SFBULK_CA_FILE", "ca_file"),
    "http_timeout": ("timeout", "SFBULK_HTTP_TIMEOUT", "http_timeout"),
    # the grant (docs/auth.md)
    "grant_type": ("grantType", "SFBULK_GRANT_TYPE", "grant_type"),
    "username": ("username", "SFBULK_USERNAME", "username"),
    "password": ("password", "SFBULK_PASSWORD", "password"),
    "private_key_file": ("privateKeyFile", "SFBULK_PRIVATE_KEY_FILE", "private_key_file"),
    "private_key": ("privateKey", "SFBULK_PRIVATE_KEY", "private_key"),
    "private_key_password": ("privateKeyPassword", "SFBULK_PRIVATE_KEY_PASSWORD", "private_key_password"),
    "audience": ("audience", "SFBULK_AUDIENCE", "audience"),
}
#: settings without a flag: a PEM or its passphrase never belongs on a command line
ENV_ONLY = frozenset({"private_key", "private_key_password"})


def connection_options(fn: Any) -> Any:
    """The connection flags shared by load and extract."""
    opts = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            envvar="SFBULK_CONFIG",
            help="YAML file with connection settings (keys: api_url, api_version, access_token, "
            "refresh_token, client_id, client_secret, token_endpoint, ca_file, http_timeout, registry, "
            "grant_type, username, password, private_key_file, private_key, private_key_password, audience).",
        ),
        click.option(
            "--api-url", help="Instance URL, e.g. https://example.my.salesforce.com [SFBULK_API_URL]."
        ),
        click.option("--api-version", help="Bulk API version (default 62.0) [SFBULK_API_VERSION]."),
        click.option("--access-token", help="Access token / session id [SFBULK_ACCESS_TOKEN]."),
        click.option("--refresh-token", help="OAuth refresh token [SFBULK_REFRESH_TOKEN]."),
        click.option("--client-id", help="Connected app consumer key [SFBULK_CLIENT_ID]."),
        click.option("--client-secret", help="Connected app consumer secret [SFBULK_CLIENT_SECRET]."),
        click.option(
            "--token-endpoint",
            help="OAuth host (default https://login.salesforce.com) [SFBULK_TOKEN_ENDPOINT].",
        ),
        click.option(
            "--ca-file", type=click.Path(dir_okay=False), help="CA bundle to verify TLS [SFBULK_CA_FILE]."
        ),
        click.option(
            "--grant-type",
            type=click.Choice(["refresh_token", "jwt_bearer", "client_credentials", "password"]),
            help="OAuth grant that obtains tokens (default refresh_token; docs/auth.md) [SFBULK_GRANT_TYPE].",
        ),
        click.option(
            "--username",
            help="Salesforce username: jwt_bearer's subject, or password's user [SFBULK_USERNAME].",
        ),
        click.option(
            "--password",
            help="Password + security token, --grant-type password (deprecated by Salesforce) [SFBULK_PASSWORD].",
        ),
        click.option(
            "--private-key-file",
            type=click.Path(dir_okay=False),
            help="PEM private key for --grant-type jwt_bearer [SFBULK_PRIVATE_KEY_FILE]; or the PEM text in "
            "SFBULK_PRIVATE_KEY, its passphrase in SFBULK_PRIVATE_KEY_PASSWORD.",
        ),
        click.option(
            "--audience",
            help="JWT aud (default: login or test URL from --token-endpoint) [SFBULK_AUDIENCE].",
        ),
        click.option(
            "--http-timeout",
            type=click.FloatRange(0, MAX_HTTP_TIMEOUT, min_open=True),
            help="Seconds per HTTP call, above 0 (default 60) [SFBULK_HTTP_TIMEOUT].",
        ),
        click.option(
            "--registry",
            "registry_dir",
            metavar="FOLDER|URL",
            envvar="SFBULK_REGISTRY",
            help="Where the access token is cached: a folder (default ./registry) or a "
            "postgresql:// URL shared with other hosts (docs/registry.md) [SFBULK_REGISTRY].",
        ),
        registry_key_option,
        click.option(
            "--api",
            "bulk_api",
            type=click.Choice(["1", "2"]),
            default="1",
            show_default=True,
            help="Bulk API version: 1 (Bulk API 1.0 batches) or 2 (Bulk API 2.0 jobs; see docs/bulk2.md).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 32),
            default=4,
            show_default=True,
            help="Parallel uploads/downloads (with --api 2: jobs and result pages).",
        ),
        click.option(
            "--timeout",
            "poll_timeout",
            type=click.FloatRange(0, min_open=True),
            default=7200.0,
            show_default=True,
            help="Overall seconds to wait for Salesforce to process the job (above 0); a load counts them from its last upload.",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress bar (default: on a terminal; plain periodic lines otherwise).",
        ),
        click.option(
            "--json-summary",
            "json_summary",
            type=click.Path(dir_okay=False),
            help="Also write the outcome as JSON to this file: counts, job ids, result files, elapsed "
            "time, API usage (docs/bulk.md, 'JSON summary'); written on failures too.",
        ),
        click.option(
            "--progress-interval",
            type=click.FloatRange(0.1, 3600),
            default=5.0,
            show_default=True,
            envvar="SFBULK_PROGRESS_INTERVAL",
            help="Seconds between plain progress lines (no terminal, or --no-progress) "
            "[SFBULK_PROGRESS_INTERVAL].",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def resolve_settings(kwargs: dict[str, Any]) -> dict[str, str]:
    """Flags > environment > config file; returns connector init parameters."""
    config: dict[str, Any] = {}
    path = kwargs.get("config_file")
    if path:
        from sfbulk.yamlfile import parse_yaml  # only for --config: start-up time

        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise click.UsageError(f"cannot read --config {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise click.UsageError(f"--config {path} is not UTF-8 text") from None
        try:
            # the loader flows and settings files use: a duplicate key is an error, not the last one wins
            loaded = parse_yaml(text, str(path)) or {}
        except ConfigError as exc:
            raise click.UsageError(f"--config {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise click.UsageError(f"--config {path} must be a mapping of settings")
        known = {key for _, _, key in CONNECTION_SETTINGS.values()} | {"registry"}
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise click.UsageError(
                f"--config {path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        config = loaded
    params: dict[str, str] = {}
    origins: dict[str, str] = {}  # init parameter -> where the user set it (for messages)
    for option, (param, env, key) in CONNECTION_SETTINGS.items():
        value, origin = kwargs.get(option), "--" + option.replace("_", "-")
        if value in (None, ""):
            value, origin = os.environ.get(env), env
        if value in (None, ""):
            value, origin = config.get(key), f"{key} in --config {path}"
        if value not in (None, ""):
            params[param] = str(value)
            origins[param] = origin
    kwargs["setting_origins"] = origins
    _ORIGINS.clear()
    _ORIGINS.update(origins)
    _check_values(params, origins)
    if "apiUrl" not in params:
        raise click.UsageError("no Salesforce URL: pass --api-url, set SFBULK_API_URL or api_url in --config")
    if not params.get("accessToken") and not params.get("refreshToken") and not params.get("grantType"):
        raise click.UsageError(
            "no credentials: give an access token, a refresh token with client id/secret, or --grant-type "
            "with its settings (flags, SFBULK_* variables or --config; docs/auth.md)"
        )
    if params.get("refreshToken") and not params.get("accessToken"):
        params["accessToken"] = "-"  # a seed: the first answer is InvalidSessionId, then refresh-and-replay
    kwargs.setdefault("registry_dir", None)
    if not kwargs.get("registry_dir") and config.get("registry"):
        kwargs["registry_dir"] = str(config["registry"])
    return params


def _check_values(params: dict[str, str], origins: dict[str, str]) -> None:
    """Out-of-range settings from the environment or --config are usage errors naming where they came from
    (flags are checked by click already)."""
    if "timeout" in params:
        try:
            seconds = float(params["timeout"])
            if not 0 < seconds <= MAX_HTTP_TIMEOUT:
                raise ValueError
        except ValueError:
            raise click.UsageError(
                f"{origins['timeout']} must be a number of seconds above 0 and at most "
                f"{MAX_HTTP_TIMEOUT:g}, got {params['timeout']!r}"
            ) from None
    ca_file = params.get("caFile")
    if ca_file and not os.path.isfile(ca_file):
        why = "is a folder" if os.path.isdir(ca_file) else "does not exist"
        raise click.UsageError(f"{origins['caFile']} {ca_file} {why}: give the PEM file of the CA bundle")
    if ca_file and not os.access(ca_file, os.R_OK):
        raise click.UsageError(f"{origins['caFile']} {ca_file} cannot be read (permission denied)")


def user_path(filename: Any) -> str:
    """The path to name in a file-system error: the user's file, not one of our work files
    (``out.csv.part`` -> ``out.csv``; a file in a ``.sfbulk-*`` work folder -> that folder's parent)."""
    if filename is None:
        return ""
    name = os.fsdecode(filename)
    parts = name.split(os.sep)
    for i, part in enumerate(parts):
        # our work folders, and the probe file that checks an output folder is writable
        if part.startswith(".sfbulk-") or (i == len(parts) - 1 and _TEMP_NAME(part)):
            folder = os.sep.join(parts[:i]) or "."
            return f"{folder} (the output folder, where the work files are written)"
    if name.endswith(".part"):
        return name[: -len(".part")]
    return name


_TEMP_NAME = re.compile(r"tmp[a-z0-9_]{8}").fullmatch  # tempfile's names

#: where each connection setting of this command came from (flag, variable, config key)
_ORIGINS: dict[str, str] = {}

#: connector init parameter -> how the user sets it, for messages that name the parameter
_PARAM_LABELS = {
    param: env if option in ENV_ONLY else f"--{option.replace('_', '-')} / {env}"
    for option, (param, env, _key) in CONNECTION_SETTINGS.items()
}
# One pass over the text, longest names first; a grant's name ("grantType password") and
# Salesforce's own words ("audience is invalid") are not parameters.
_PARAM_NAMES = re.compile(
    r"(?<!grantType )(?<!grantType is )(?<!grantType to )'?\b("
    + "|".join(sorted((p for p in _PARAM_LABELS if p != "timeout"), key=len, reverse=True))
    + r")\b'?(?! is invalid)"
)


def cli_message(text: str, origins: dict[str, str] | None = None) -> str:
    """A connector message with its init parameter names (``caFile``) replaced by what the user
    wrote: the flag, variable or config key that set it, else ``--ca-file / SFBULK_CA_FILE``."""
    origins = origins or {}
    if text.startswith("init: "):
        text = text[len("init: ") :]
        head, sep, rest = text.partition(" ")
        if (
            head == "timeout" or head == "parameter"
        ):  # "timeout must be ...", "parameter 'apiUrl' is required"
            text = (
                (origins.get("timeout") or _PARAM_LABELS["timeout"]) + sep + rest
                if head == "timeout"
                else text
            )
    return _PARAM_NAMES.sub(lambda m: origins.get(m[1]) or _PARAM_LABELS[m[1]], text)


def cached_token_note(
    params: dict[str, str], registry_dir: str | Registry, origins: dict[str, str] | None = None
) -> str | None:
    """Why the given credentials may not be sent: a fresh token cached for the same identity is used.

    Read-only: asks the token manager the connection will use (``sfbulk.connector.auth``), which serves a
    cached token only to the credentials that obtained it; nothing is written.
    """
    if not (params.get("refreshToken") and params.get("clientId")) and not params.get("grantType"):
        return None  # without credentials for a grant the registry is not used at all
    from sfbulk.connector.auth import InitParams, TokenManager
    from sfbulk.errors import SfBulkError
    from sfbulk.registry import open_registry
    from sfbulk.transport import RequestsTransport

    try:
        registry = open_registry(registry_dir)
        init = InitParams.from_params({k: v for k, v in params.items() if k in _INIT_NAMES()})
        with RequestsTransport() as unused:  # never sends: cached() only reads the registry
            found = TokenManager(init, registry, unused).cached()
    except SfBulkError:
        return None
    if not init.can_refresh:
        return None
    if found is None:
        return None  # nothing fresh for these credentials: they are used for a grant
    key, stamp = found
    age = time.time() - stamp / 1000
    origins = origins or {}
    if params.get("accessToken") not in (None, "", "-"):
        ignored = (
            f"the access token given with {origins.get('accessToken', 'SFBULK_ACCESS_TOKEN')} is not used"
        )
    else:
        ignored = (
            "the given refresh token and client id/secret are used only when Salesforce rejects it"
            if init.grant_type == "refresh_token"
            else f"the given {init.grant_type} credentials are used only when Salesforce rejects it"
        )
    return (
        f"using the access token cached for these credentials in {registry.location(key)} "
        f"(stored {_age(age)} ago for {params['apiUrl']}); {ignored}"
    )


def _INIT_NAMES() -> tuple[str, ...]:  # noqa: N802 - a lazily imported constant
    from sfbulk.connector.auth import INIT_PARAMETERS

    return tuple(INIT_PARAMETERS)


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def open_connection(kwargs: dict[str, Any]) -> Any:
    from sfbulk.connector.connection import Connector
    from sfbulk.registry import open_registry

    params: dict[str, Any] = dict(resolve_settings(kwargs))
    try:
        registry = open_registry(
            kwargs.get("registry_dir") or "registry", key_file=kwargs.get("registry_key_file")
        )
    except RegistryError as exc:  # a --registry or key that cannot be used: fix the option (exit 2)
        raise ParameterError(str(exc)) from None
    note = cached_token_note(params, registry, kwargs.get("setting_origins"))
    if note:
        log.info("%s", note)
    # --api 2: the salesforcebulkv2 bundle (same init, same token life cycle and registry entry)
    bundle = "salesforcebulkv2" if kwargs.get("bulk_api") == "2" else None
    return Connector.load(bundle).connection(registry=registry, **params)


def progress_display(kind: str, kwargs: dict[str, Any], source: str | None = None) -> Progress:
    """The load or extract progress display (sfbulk.bulk.progress) for these options."""
    from sfbulk.bulk.progress import ExtractDisplay, LoadDisplay

    enabled = kwargs.get("progress")
    tty = None if enabled is None else bool(enabled)
    interval = float(kwargs.get("progress_interval") or 5.0)
    if kind == "load":
        size = os.path.getsize(source) if source and os.path.exists(source) else 0
        return LoadDisplay(
            size, tty=tty, interval=interval, unit="jobs" if kwargs.get("bulk_api") == "2" else "batches"
        )
    return ExtractDisplay(tty=tty, interval=interval)


class _JobWatch:
    """What the running command announced (its job id) and how it was stopped, so every exit names the job."""

    def __init__(self, command: str = "", summary_path: str | None = None) -> None:
        self.job_id: str | None = None
        self.signum = signal.SIGINT
        self.progress: Any = None
        self.command = command
        #: --json-summary PATH, written on every exit (docs/bulk.md, "JSON summary")
        self.summary_path = summary_path
        self.started = time.time()

    def write_summary(self, exit_code: int, fields: dict[str, Any]) -> None:
        if self.summary_path:
            doc = json_summary.document(self.command, exit_code, self.started, fields)
            json_summary.write(self.summary_path, doc)

    def write_failure(
        self, exit_code: int, error: str, job_id: str | None = None, journal: str | None = None
    ) -> None:
        self.write_summary(exit_code, json_summary.failure_fields(error, job_id or self.job_id, journal))

    def note(self, message: str) -> None:
        """The pipeline's user-facing notes (``LoadOptions.notify``): printed above the progress display."""
        match = re.match(r"job (\w+):", message)
        if match:
            self.job_id = match.group(1)
        write = getattr(self.progress, "write", None)
        if callable(write):
            write(message)
        else:
            click.echo(message, err=True)


_watch = _JobWatch()


def _job_exits(fn: Any) -> Any:
    """Ctrl-C and SIGTERM become a clean stop naming the job (exit 130 / 143); see BulkInterrupted."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        global _watch
        json_summary.check_path(kwargs.get("json_summary"))
        json_summary.new_run()
        _watch = _JobWatch(fn.__name__.removesuffix("_command"), kwargs.get("json_summary"))
        previous = None
        if threading.current_thread() is threading.main_thread():

            def on_term(signum: int, frame: Any) -> None:
                _watch.signum = signal.Signals(signum)
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGTERM, on_term)
        try:
            return fn(*args, **kwargs)
        except click.UsageError as exc:  # click prints it and exits 2; the summary says so too
            _watch.write_failure(EXIT_USAGE, exc.format_message())
            raise
        except BulkInterrupted as exc:
            click.echo(f"interrupted: {exc}", err=True)
            _watch.write_failure(
                128 + int(_watch.signum), f"interrupted: {exc}", getattr(exc, "job_id", None)
            )
            _exit_now(128 + int(_watch.signum))
        except KeyboardInterrupt:
            # Before the job existed, or a second Ctrl-C while in-flight requests were finishing:
            # the journal holds everything done so far, so stopping now loses nothing.
            if _watch.job_id:
                click.echo(
                    f"interrupted: job {_watch.job_id} stays open; re-run the same command to resume "
                    "(nothing is sent twice), or add --restart to abort the job and start over",
                    err=True,
                )
            else:
                click.echo("interrupted before a job was created: nothing was sent", err=True)
            _watch.write_failure(128 + int(_watch.signum), "interrupted")
            _exit_now(128 + int(_watch.signum))
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return command


def _exit_now(status: int) -> None:
    """Exit with ``status`` without waiting for our worker threads (a result download in flight is
    not journaled, so abandoning it loses nothing; a re-run fetches it again)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.name.startswith("sfbulk-") and t.is_alive() and not t.daemon for t in threading.enumerate()):
        os._exit(status)
    sys.exit(status)


def _echo_api_usage() -> None:
    """The Salesforce API usage the last answer reported (Sforce-Limit-Info), under the summary line."""
    line = json_summary.usage_line()
    if line:
        click.echo(line, err=True)


def _fail(exc: SfBulkError) -> None:
    if isinstance(exc, BulkInterrupted):
        raise exc  # _job_exits reports it and exits 130 (SIGINT) / 143 (SIGTERM)
    message = cli_message(str(exc), _ORIGINS)
    click.echo(f"error: {message}", err=True)
    job_id = getattr(exc, "job_id", None) or _watch.job_id
    journal = getattr(exc, "journal", None)
    from sfbulk.connector.jwt_assertion import PrivateKeyError  # a bad key file is bad input

    code = (
        EXIT_USAGE if isinstance(exc, (BulkInputError, ParameterError, PrivateKeyError)) else EXIT_JOB_FAILED
    )
    _watch.write_failure(code, message, job_id, journal)
    if job_id and journal and os.path.exists(journal):
        click.echo(
            f"job {job_id}: not finished; {journal} keeps its progress: re-run the same command to resume "
            "(nothing is sent twice), or add --restart to abort the job and start over",
            err=True,
        )
    elif job_id and str(job_id) not in str(exc):
        click.echo(f"job {job_id}: stopped", err=True)
    sys.exit(code)


def _fail_io(exc: OSError) -> None:
    message = f"{exc.strerror or exc}: {user_path(exc.filename)}"
    click.echo(f"error: {message}", err=True)
    _watch.write_failure(EXIT_USAGE, message)
    sys.exit(EXIT_USAGE)


def _check_api_flags(
    api2: bool, *, max_job_bytes: int | None = None, serial: bool = False, batch_size: int | None = None
) -> None:
    """Flags of one Bulk API version given with the other are usage errors, not silently ignored."""
    source = click.get_current_context().get_parameter_source
    if not api2 and max_job_bytes is not None:
        raise click.UsageError("--max-job-bytes applies to Bulk API 2.0 jobs: add --api 2, or drop it")
    if api2 and serial:
        raise click.UsageError(
            "--serial is a Bulk API 1.0 setting (2.0 jobs have no concurrency mode): drop it, or use --api 1"
        )
    if (
        api2
        and batch_size is not None
        and source("batch_size") not in (None, click.core.ParameterSource.DEFAULT)
    ):
        raise click.UsageError(
            "--batch-size is a Bulk API 1.0 setting (Salesforce cuts 2.0 jobs itself; "
            "--max-job-bytes sets the size of each job): drop it, or use --api 1"
        )


@click.command("load")
@click.argument("csv_file", required=False, type=click.Path(dir_okay=False))
@click.option("--object", "sobject", required=True, help="sObject to load, e.g. Contact.")
@click.option(
    "--operation",
    type=click.Choice(["insert", "update", "upsert", "delete", "hardDelete"]),
    default="insert",
    show_default=True,
)
@click.option("--external-id", help="External id field for upsert.")
@click.option("--serial", is_flag=True, help="Serial concurrency mode (avoids UNABLE_TO_LOCK_ROW).")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=10_000,
    show_default=True,
    help="Records per batch (Salesforce's maximum is 10,000; batches also stay under 10,000,000 bytes).",
)
@click.option(
    "--encoding", default="utf-8", show_default=True, help="Encoding of the input file (sent as UTF-8)."
)
@click.option(
    "--reject-nul", is_flag=True, help="Fail on NUL bytes instead of stripping them (with a warning)."
)
@click.option(
    "--success",
    "success_path",
    type=click.Path(dir_okay=False),
    help="Success file (default: <input>.success.csv next to the input).",
)
@click.option(
    "--errors",
    "error_path",
    type=click.Path(dir_okay=False),
    help="Error file (default: <input>.error.csv next to the input).",
)
@click.option(
    "--retry-failed",
    type=click.Path(exists=True, dir_okay=False),
    help="Reload only the rows of this error file (written by an earlier load).",
)
@click.option(
    "--max-job-bytes",
    type=click.IntRange(1_000, 100_000_000),
    default=None,
    help="--api 2: CSV bytes per job; larger input is split into several jobs run in parallel "
    "(default and maximum 100,000,000).",
)
@connection_options
@click.option(
    "--restart",
    is_flag=True,
    help="Abort the job an interrupted run left unfinished (see its journal) and start over.",
)
@_job_exits
def load_command(
    csv_file: str | None,
    sobject: str,
    operation: str,
    external_id: str | None,
    serial: bool,
    batch_size: int,
    encoding: str,
    reject_nul: bool,
    success_path: str | None,
    error_path: str | None,
    retry_failed: str | None,
    restart: bool,
    max_job_bytes: int | None,
    **kwargs: Any,
) -> None:
    """Load CSV_FILE into Salesforce with the Bulk API; write success and error CSVs in input order.

    An interrupted load (Ctrl-C, kill, timeout, network failure) resumes when the same command is
    run again: nothing is sent twice. --restart abandons it and starts over.
    """
    from sfbulk.bulk.load import LoadOptions, load_csv
    from sfbulk.bulk.results import strip_result_columns

    if bool(csv_file) == bool(retry_failed):
        raise click.UsageError("give either CSV_FILE or --retry-failed ERROR_FILE (exactly one)")
    api2 = kwargs.get("bulk_api") == "2"
    _check_api_flags(api2, max_job_bytes=max_job_bytes, serial=serial, batch_size=batch_size)
    source = csv_file
    tmp: str | None = None
    try:
        if retry_failed:
            import tempfile

            base = retry_failed[:-4] if retry_failed.lower().endswith(".csv") else retry_failed
            fd, tmp = tempfile.mkstemp(
                prefix=".sfbulk-retry-", suffix=".csv", dir=os.path.dirname(os.path.abspath(retry_failed))
            )
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                count = strip_result_columns(retry_failed, out)
            click.echo(f"retrying {count:,} failed rows from {retry_failed}", err=True)
            source = tmp
            success_path = success_path or base + ".retry.success.csv"
            error_path = error_path or base + ".retry.error.csv"
            encoding = "utf-8"
        elif not os.path.exists(source or ""):
            raise click.UsageError(f"input file {source} does not exist")
        assert source is not None
        options = LoadOptions(
            object=sobject,
            operation=operation,
            external_id=external_id,
            serial=serial,
            batch_size=batch_size,
            concurrency=kwargs["concurrency"],
            encoding=encoding,
            nul="reject" if reject_nul else "strip",
            timeout=kwargs["poll_timeout"],
            success_path=success_path,
            error_path=error_path,
        )
        if retry_failed is None:
            from sfbulk.bulk.load import default_outputs

            d_ok, d_err = default_outputs(source)
            options.success_path = success_path or d_ok
            options.error_path = error_path or d_err
            # Refuse a header Salesforce would refuse before connecting (load_csv checks again).
            from sfbulk.bulk.precheck import check_file

            with open(source, "rb") as head:
                plan = check_file(
                    head,
                    source,
                    operation=operation,
                    external_id=external_id,
                    encoding=encoding,
                    nul=options.nul,
                )
            if plan.note:
                click.echo(f"note: {source}: {plan.note}", err=True)
        options.restart, options.notify = restart, _watch.note
        options.source_name = retry_failed or source  # the journal names the user's file, not a temporary one
        conn = open_connection(kwargs)
        progress = _watch.progress = progress_display("load", kwargs, source)
        try:
            if api2:
                from sfbulk.bulk.v2.load import MAX_JOB_BYTES, load_csv_v2

                summary = load_csv_v2(
                    conn, source, options, progress, max_job_bytes=max_job_bytes or MAX_JOB_BYTES
                )
            else:
                summary = load_csv(conn, source, options, progress)
        finally:
            progress.close()
            conn.close()
    except SfBulkError as exc:
        _fail(exc)
        return
    except OSError as exc:  # unreadable input, unwritable output folder, full disk
        _fail_io(exc)
    finally:
        if tmp:
            os.unlink(tmp)
    if api2:
        click.echo(
            f"{'job' if summary.batches == 1 else 'jobs'} {summary.job_id.replace(',', ', ')}: {summary.rows:,} "
            f"rows in {summary.batches} {'job' if summary.batches == 1 else 'jobs'} (Bulk API 2.0), "
            f"{summary.succeeded:,} succeeded, {summary.failed:,} failed in {summary.seconds:.1f} s",
            err=True,
        )
    else:
        click.echo(
            f"job {summary.job_id}: {summary.rows:,} rows in {summary.batches} batches, "
            f"{summary.succeeded:,} succeeded, {summary.failed:,} failed in {summary.seconds:.1f} s",
            err=True,
        )
    _echo_api_usage()
    if summary.nul_stripped:
        click.echo(f"warning: {summary.nul_stripped:,} NUL bytes were stripped from the input", err=True)
    if summary.blank_lines:
        click.echo(f"warning: {summary.blank_lines:,} blank lines were skipped", err=True)
    if summary.retries:
        click.echo(
            f"note: {summary.retries} transient failures retried "
            f"({summary.resends} batches re-sent after checking they were not created)",
            err=True,
        )
    if summary.stop_reason:
        unsent = (
            f"{summary.unsent_rows:,} rows were not sent (they are in the error file)"
            if summary.unsent_rows
            else "every batch had been uploaded before it was known"
        )
        click.echo(
            f"stopped uploading: a batch failed with {summary.stop_reason}, which fails every batch; "
            f"{unsent}",
            err=True,
        )
    if summary.reasons:
        click.echo("top error reasons:", err=True)
        for reason, count in summary.reasons:
            click.echo(f"  {count:,} \u00d7 {reason}", err=True)
    click.echo(f"success: {summary.success_path}\nerrors:  {summary.error_path}", err=True)
    unaccounted = summary.rows - summary.succeeded - summary.failed
    exit_code = EXIT_JOB_FAILED if unaccounted else EXIT_ROWS_FAILED if summary.failed else 0
    _watch.write_summary(
        exit_code,
        json_summary.load_fields(
            summary,
            bulk_api=str(kwargs.get("bulk_api") or "1"),
            sobject=sobject,
            operation=operation,
            source=retry_failed or csv_file or "",
        ),
    )
    if unaccounted:  # never expected: every row is in one of the two files; but never exit 0 if not
        click.echo(f"error: {unaccounted:,} rows of the input are in neither result file", err=True)
    if exit_code:
        sys.exit(exit_code)


@click.command("extract")
@click.argument("soql")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Output CSV file.")
@click.option("--all", "query_all", is_flag=True, help="queryAll: include deleted and archived records.")
@click.option(
    "--pk-chunking",
    "pk_chunking",
    is_flag=False,
    flag_value="true",
    default=None,
    metavar="[SIZE]",
    help="Split the query by record id ranges (optional chunk size, max 250,000).",
)
@click.option("--object", "sobject", help="Object of the query job (default: the FROM object).")
@click.option(
    "--max-records",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="--api 2: records per result page (Salesforce's maxRecords; default 50,000); pages are "
    "downloaded in parallel.",
)
@connection_options
@click.option(
    "--restart",
    is_flag=True,
    help="Abandon the job an interrupted extract left unfinished (see its journal) and start over.",
)
@_job_exits
def extract_command(
    soql: str,
    out_path: str,
    query_all: bool,
    pk_chunking: str | None,
    sobject: str | None,
    restart: bool,
    max_records: int | None,
    **kwargs: Any,
) -> None:
    """Extract the records of SOQL into one CSV file (streamed to disk, header once).

    An interrupted extract resumes when the same command is run again (same job, only the result
    files not yet downloaded). --restart starts over.
    """
    from sfbulk.bulk.extract import ExtractOptions, extract, pk_chunking_header

    try:
        pk_chunking_header(pk_chunking)
        if kwargs.get("bulk_api") == "2" and sobject:
            raise click.UsageError(
                "--object is a Bulk API 1.0 setting (a 2.0 query job takes its object from the "
                "query): drop it, or use --api 1"
            )
        if kwargs.get("bulk_api") != "2" and max_records is not None:
            raise click.UsageError(
                "--max-records applies to Bulk API 2.0 result pages: add --api 2, or drop it"
            )
        options = ExtractOptions(
            query_all=query_all,
            pk_chunking=pk_chunking,
            object=sobject,
            concurrency=kwargs["concurrency"],
            timeout=kwargs["poll_timeout"],
        )
        options.restart, options.notify = restart, _watch.note
        conn = open_connection(kwargs)
        progress = _watch.progress = progress_display("extract", kwargs)
        try:
            if kwargs.get("bulk_api") == "2":
                from sfbulk.bulk.v2.extract import PAGE_RECORDS, extract_v2

                summary = extract_v2(
                    conn, soql, out_path, options, progress, page_records=max_records or PAGE_RECORDS
                )
            else:
                summary = extract(conn, soql, out_path, options, progress)
        finally:
            progress.close()
            conn.close()
    except SfBulkError as exc:
        _fail(exc)
        return
    except OSError as exc:  # unreadable input, unwritable output folder, full disk
        _fail_io(exc)
    if kwargs.get("bulk_api") == "2":
        click.echo(
            f"job {summary.job_id}: {summary.rows:,} records (Bulk API 2.0, {summary.result_files} result "
            f"pages) written to {summary.out_path} in {summary.seconds:.1f} s",
            err=True,
        )
    else:
        click.echo(
            f"job {summary.job_id}: {summary.rows:,} records from {summary.batches} batches "
            f"({summary.result_files} result files) written to {summary.out_path} in {summary.seconds:.1f} s",
            err=True,
        )
    _echo_api_usage()
    if summary.nul_stripped:
        click.echo(f"warning: {summary.nul_stripped:,} NUL bytes were stripped from the results", err=True)
    _watch.write_summary(
        0, json_summary.extract_fields(summary, bulk_api=str(kwargs.get("bulk_api") or "1"), soql=soql)
    )
