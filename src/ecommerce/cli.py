"""The `ecommerce` command: a thin layer over the use cases."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import typer

from ecommerce.platform.settings import VAR_DIR, Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="E-commerce service.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="User accounts.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


def _upgrade(settings: Settings) -> None:
    from ecommerce.platform.migrate import upgrade

    upgrade(settings.database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    _upgrade(Settings())
    typer.echo("database is up to date")


@users_app.command("create-admin")
def create_admin(username: str = typer.Option(...), password: str = typer.Option(...)) -> None:
    """Create an admin account (or make an existing account admin with this password)."""
    from ecommerce.accounts.schemas import SignupIn

    try:
        SignupIn(username=username, password=password)
    except ValueError as error:
        typer.echo(f"invalid username or password: {error}", err=True)
        raise typer.Exit(2) from None
    settings = Settings()
    _upgrade(settings)

    async def go() -> int:
        from ecommerce.context import AppContext

        ctx = AppContext.build(settings)
        try:
            return await ctx.accounts.ensure_admin(username, password)
        finally:
            await ctx.close()

    user_id = asyncio.run(go())
    typer.echo(f"admin {username.lower()} is user {user_id}")


@app.command()
def seed(demo: bool = typer.Option(False, "--demo", help="Load the demo data set.")) -> None:
    """Load demo data (idempotent: does nothing if it is already there)."""
    if not demo:
        typer.echo("nothing to do: pass --demo")
        return
    settings = Settings()
    _upgrade(settings)
    from ecommerce.seed import run_seed

    typer.echo(asyncio.run(run_seed(settings)))


@app.command()
def audit() -> None:
    """Check every invariant; print a report. Exit 1 on any violation; 3 if none was found
    but some payments could not be checked (the gateway did not answer); 0 when clean."""
    from ecommerce.audit import run_audit

    report = asyncio.run(run_audit(Settings()))
    for name, problems in report.checks.items():
        status = "ok" if not problems else f"{len(problems)} violation(s)"
        typer.echo(f"{name}: {status}")
        for problem in problems[:20]:
            typer.echo(f"  - {problem}")
    if report.unchecked:
        typer.echo(f"could not check: {len(report.unchecked)} payment(s), the gateway did "
                   "not answer")
        for problem in report.unchecked[:20]:
            typer.echo(f"  - {problem}")
    if not report.clean:
        raise typer.Exit(1)
    if report.unchecked:
        raise typer.Exit(3)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          no_migrate: bool = typer.Option(False, "--no-migrate"),
          no_consumers: bool = typer.Option(
              False, "--no-consumers", help="Leave the consumers to `ecommerce consume`."),
          seed_demo: bool = typer.Option(False, "--seed-demo",
                                         help="Load demo data if the shop is empty."),
          reuse_port: bool = typer.Option(
              False, "--reuse-port",
              help="Share the port with a server already on it (SO_REUSEPORT).")) -> None:
    """Serve the API (migrating first unless --no-migrate)."""
    from ecommerce.platform.logging import configure_logging
    from ecommerce.platform.serving import PortInUse, Sidecar, check_port_free
    from ecommerce.platform.serving import serve as run_server

    if not reuse_port:
        try:
            check_port_free(host, port)  # before migrating or starting anything
        except PortInUse as error:
            typer.echo(f"ecommerce serve: {error}", err=True)
            raise typer.Exit(1) from None

    if no_consumers:
        os.environ["RUN_CONSUMERS"] = "false"  # read by every worker's settings
    settings = Settings()
    configure_logging(settings.log_level)  # the supervisor's lines (worker exits) too
    if not no_migrate:
        _upgrade(settings)
    if seed_demo:
        from ecommerce.seed import run_seed

        typer.echo(asyncio.run(run_seed(settings)))
    settings.signing_key()  # create the shared key before the workers start
    sidecar = None
    if settings.run_consumers and (settings.data_platform_url or settings.smtp_url
                                   or settings.broker != "outbox"):
        # The consumers run in a process of their own beside the workers, at a lower CPU
        # priority: requests first, background work in the room they leave (decision 65).
        sidecar = Sidecar(["consume"], nice=settings.consumer_nice)
        os.environ["CONSUMERS_APART"] = "true"  # so the workers do not run them too
    metrics_dir = None
    if workers > 1 or sidecar is not None:  # /metrics adds up every process's figures
        metrics_dir = _metrics_dir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    if sidecar is not None:
        sidecar.start()
    try:
        run_server(settings, host=host, port=port, workers=workers, reuse_port=True)
    finally:
        if sidecar is not None:
            sidecar.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir() -> Path:
    """This server's folder for its processes' metric files, made empty; the folders of
    servers that are gone (killed before they could remove their own) are removed."""
    root = VAR_DIR / "prometheus"
    root.mkdir(parents=True, exist_ok=True)
    for folder in root.iterdir():
        if folder.name.isdigit() and not _alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
    mine = root / str(os.getpid())
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir()
    return mine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only whether there is such a process
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's
    return True


@app.command()
def consume(group: str = typer.Option(None, "--group",
                                      help="Run only this consumer (data-platform, email).")
            ) -> None:
    """Run the consumers as their own process (until SIGTERM or Ctrl-C); with a broker
    (EVENT_BROKER kafka or redis), this process also publishes the outbox to it."""
    import signal

    from ecommerce.consumers import setup
    from ecommerce.context import AppContext
    from ecommerce.platform.logging import configure_logging

    if group is not None and group not in setup.NAMES:
        typer.echo(f"no consumer {group!r}: one of {', '.join(setup.NAMES)}", err=True)
        raise typer.Exit(2)
    settings = Settings()
    configure_logging(settings.log_level)

    async def go() -> None:
        ctx = AppContext.build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if not setup.consumers(settings, ctx.db, ctx.clock, group):
            typer.echo("no consumer is configured: set DATA_PLATFORM_URL and/or SMTP_URL",
                       err=True)
        try:
            await asyncio.gather(*setup.start(settings, ctx.db, ctx.clock, ctx.redis, stop,
                                              group))
        finally:
            await ctx.close()

    asyncio.run(go())


@app.command("dev-mail")
def dev_mail(port: int = 1025, host: str = "127.0.0.1",
             web_port: int = typer.Option(8025, help="The page that shows the mails.")
             ) -> None:
    """A local SMTP server that keeps every mail it receives and shows them on a web page;
    point SMTP_URL at it."""
    from ecommerce.standins.mail import run

    typer.echo(f"dev-mail: SMTP_URL=smtp://{host}:{port}, mails on http://{host}:{web_port}/")
    run(host=host, port=port, web_port=web_port)


payments_app = typer.Typer(help="Card payments.", no_args_is_help=True)
app.add_typer(payments_app, name="payments")


@payments_app.command("reconcile")
def payments_reconcile() -> None:
    """One pass of the payment reconcile job (what every `serve` process runs on its own):
    expire holds past their time, settle unknown payments from the gateway, retry refunds."""
    from ecommerce.context import AppContext

    settings = Settings()

    async def go() -> dict[str, int]:
        ctx = AppContext.build(settings)
        try:
            return await ctx.payments.reconcile_once()
        finally:
            await ctx.close()

    done = asyncio.run(go())
    typer.echo(", ".join(f"{name}: {count}" for name, count in done.items()))


@app.command("dev-sink")
def dev_sink(port: int = 9000, host: str = "127.0.0.1",
             secret: str = typer.Option(None, help="Check X-Signature with this secret."),
             record: Path = typer.Option(None, help="Append each event to this JSONL file."),
             quiet: bool = False,
             delay: float = typer.Option(0.0, help="Seconds to wait before answering."),
             hold_while: Path = typer.Option(
                 None, help="Answer nothing while this file exists.")) -> None:
    """A local stand-in for the data platform: receives and prints events."""
    import uvicorn

    from ecommerce.standins.data_platform import sink_app

    uvicorn.run(sink_app(secret, record, quiet, delay, hold_while), host=host, port=port,
                log_level="warning")


@app.command("dev-pg")
def dev_pg(port: int = 9100, host: str = "127.0.0.1",
           secret_key: str = typer.Option("test_sk_sandbox", help="The API's secret key."),
           client_key: str = typer.Option("test_ck_sandbox", help="The checkout's client key."),
           latency: float = typer.Option(0.0, help="Seconds added to every API call."),
           timeout_delay: float = typer.Option(
               30.0, help="Seconds the 'answered late' test card holds its answer.")) -> None:
    """A local stand-in for the card payment gateway (Toss Payments v1 API shape), with a
    checkout page and test cards; point PAYMENT_GATEWAY_URL at it."""
    import uvicorn

    from ecommerce.standins.gateway import TEST_CARDS, sandbox_app

    typer.echo(f"dev-pg on http://{host}:{port}: PAYMENT_GATEWAY_URL=http://{host}:{port} "
               f"PAYMENT_SECRET_KEY={secret_key} PAYMENT_CLIENT_KEY={client_key}")
    for number, meaning in TEST_CARDS:
        typer.echo(f"  {number}  {meaning}")
    uvicorn.run(sandbox_app(secret_key=secret_key, client_key=client_key, latency=latency,
                            timeout_delay=timeout_delay),
                host=host, port=port, log_level="warning")


def main() -> None:
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as error:  # a setting is wrong: say which and why, no traceback
        for problem in error.errors():
            name = ".".join(str(part) for part in problem["loc"]).upper() or "settings"
            typer.echo(f"configuration error: {name}: {problem['msg']}", err=True)
        raise SystemExit(2) from None
