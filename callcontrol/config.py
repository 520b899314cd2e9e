"""Settings: defaults, then a TOML file, then environment variables.

Every setting has a documented default (see README.md, "Configuration"). A TOML file given with
``--config`` (or ``CALLCONTROL_CONFIG``) overrides the defaults; an environment variable
``CALLCONTROL_<SECTION>_<KEY>`` overrides both, for example ``CALLCONTROL_DATABASE_URL``.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

if TYPE_CHECKING:
    from callcontrol.domain.pins import PinKeys


class ConfigError(Exception):
    """A setting is missing, malformed or contradictory."""


@dataclass(frozen=True)
class DatabaseSettings:
    # The embedded default: SQLite in the working folder. Production uses PostgreSQL
    # (postgresql+asyncpg://...).
    url: str = "sqlite+aiosqlite:///var/callcontrol.sqlite3"


@dataclass(frozen=True)
class SecuritySettings:
    # The PIN hash key lives outside the database: in this file (created on first use, mode 0600)
    # unless pin_secret is given directly (environment: CALLCONTROL_SECURITY_PIN_SECRET).
    pin_secret_file: str = "var/pin-secret"
    pin_secret: str = ""
    # The secrets in use before the last rotations (`callcontrol pin-secret rotate`), newest
    # first, one a line (0600): PINs hashed with them still match, and are hashed again with
    # the current secret when next keyed. Not needed once `pin-secret status` shows none left.
    pin_previous_secrets_file: str = "var/pin-secret.previous"


@dataclass(frozen=True)
class SiteSettings:
    region: str = "GB"
    # The prison's local time zone: calling windows, days and weeks are counted in it.
    timezone: str = "Europe/London"
    # Emergency short codes (999, 112): cells have call bells, so refused unless "allow".
    emergency_calls: str = "refuse"
    max_social_contacts: int = 20
    max_legal_contacts: int = 15
    pin_tries_per_call: int = 3
    # Wrong PINs count against the handset they are keyed on (docs/security-pins.md):
    # pin_lockout_failures of them within pin_lockout_window_s lock it; the n-th lockout since
    # the last successful call on it lasts pin_lockout_s * pin_lockout_growth ** (n - 1), at
    # most pin_lockout_max_s; and at most pin_daily_failures wrong PINs in any 24 hours (0: no
    # cap), what bounds a cellmate who resets the escalation with their own PIN.
    pin_lockout_failures: int = 5
    pin_lockout_window_s: int = 900
    pin_lockout_s: int = 900
    pin_lockout_growth: float = 2.0
    pin_lockout_max_s: int = 86400
    pin_daily_failures: int = 8
    pin_digits: int = 4
    # Two-stage dialling: a handset that dials this (a desk phone's hotline, set to call it
    # off-hook) is asked for the PIN, then for the number, keyed and ended by "#" or by
    # two_stage_timeout_s without a key. "" turns it off (only en-bloc numbers then).
    two_stage_number: str = "0"
    two_stage_timeout_s: int = 5
    # The balance enquiry: dialled (en bloc, or keyed after two_stage_number) with the PIN, it
    # says the available credit and the minutes left today instead of placing a call. "*" and
    # up to 7 of 0-9 and * (no number starts with "*", so it hides none); "" turns it off.
    balance_code: str = "*100"


@dataclass(frozen=True)
class BillingSettings:
    # How talk time is rated: "per_second", or "per_started_minute" (every started minute
    # is charged whole). The charge is then rounded to the nearest penny, halves up.
    rounding: str = "per_second"
    # The most a prisoner's account may hold (the UK cap is £50), in pence.
    max_balance_pence: int = 5000
    # The longest call the site allows, in seconds (every other limit can only shorten it).
    max_call_s: int = 1800
    # Warnings before the end of a call: the first at warning_s before the end, then every
    # warning_repeat_s (0: no repeat). 60 and 30 give warnings at 60 s and 30 s before the end.
    warning_s: int = 60
    warning_repeat_s: int = 30
    # A call the system dropped (not either party) within this many seconds is not charged.
    free_drop_s: int = 60
    # Per prisoner, per day and per week (in the prison's local time); 0 means no cap.
    max_calls_per_day: int = 0
    max_minutes_per_day: int = 0
    max_minutes_per_week: int = 0
    # Calling windows in the prison's local time, "HH:MM-HH:MM" each, every day.
    # Empty: calls at any time. Per wing: [billing.wing_windows] A = ["08:00-12:00"].
    windows: tuple[str, ...] = ()
    wing_windows: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The called party must press this key to accept a call from the prison.
    accept_digit: str = "1"
    accept_timeout_s: int = 20


RECORDING_WORKERS = ("spawn", "external")


@dataclass(frozen=True)
class RecordingSettings:
    # Where Asterisk's MixMonitor writes the audio while a call runs, as the daemon sees it
    # (and as Asterisk does: `asterisk render` writes it into the dialplan). Required by the
    # daemon; the lab sets it in the settings file it writes.
    spool_dir: str = ""
    # Where ingested recordings are kept, named by their SHA-256.
    store_dir: str = "var/recordings"
    # Days a recording is kept; `callcontrol recordings purge` deletes older ones.
    retention_days: int = 90
    # Opus in Ogg at this bit rate (bits per second) for the stereo speech recordings.
    bitrate: int = 24000
    # The Ed25519 key that signs checkpoints of the recording chain (created 0600 on first use;
    # never in the database). `callcontrol recordings export-key` prints its public half.
    signing_key_file: str = "var/chain-signing-key"
    # Signed checkpoints, appended one a line: ship this file off the host (rsync, syslog).
    checkpoints_file: str = "var/chain-checkpoints"
    # The daemon signs the chain's head when it moved, and at least this often when it did not.
    checkpoint_interval_s: int = 3600
    # Who compresses the recordings: the recording worker (`callcontrol recordings worker`), a
    # process of its own at idle priority. "spawn" (the default): the daemon starts it as its
    # child, restarts it if it dies and stops it with itself. "external": the site runs it
    # (e.g. callcontrol-recordings-worker.service, on this machine or others), the daemon not.
    worker: str = "spawn"
    # The worker's figures (recordings, CPU seconds, backlog; docs/recordings.md), rewritten as
    # they change; the daemon reads them for /metrics and the console.
    worker_status_file: str = "var/recordings-worker.json"


@dataclass(frozen=True)
class HttpSettings:
    # The supervision API (officers and administrators), on the daemon.
    host: str = "127.0.0.1"
    port: int = 8088
    # API tokens: their SHA-256 hashes, owners and roles, one JSON object a line (mode 0600).
    # Written by `callcontrol token add|revoke`; the daemon re-reads it when it changes.
    tokens_file: str = "var/api-tokens"
    # The token the CLI uses to call the API (or CALLCONTROL_HTTP_TOKEN), or a file holding it
    # (or CALLCONTROL_HTTP_TOKEN_FILE; `--token-file`). Never on the command line.
    token: str = ""
    token_file: str = ""


@dataclass(frozen=True)
class ConsoleSettings:
    # The staff console, at /console/ on the [http] server (docs/console.md).
    enabled: bool = True
    # The staff accounts: scrypt hashes, names and roles (mode 0600), written by `callcontrol
    # staff ...`; the daemon re-reads it when it changes.
    staff_file: str = "var/staff"
    idle_timeout_s: int = 1800  # a session ends after this long without a request
    absolute_timeout_s: int = 43200  # and after this long whatever happens (a shift)
    # Failed logins allowed per username and per client address within login_window_s.
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    login_window_s: int = 900
    # The address staff's browsers use when it is not the daemon's own: behind a reverse proxy
    # that serves the console over https, e.g. "https://console.prison.example". A form is
    # accepted only from this origin then (else from the daemon's own address).
    public_origin: str = ""


@dataclass(frozen=True)
class KioskSettings:
    # The prisoners' self-service kiosk (docs/kiosk.md): an application of its own on its own
    # listener, where no console or API route exists. Off unless enabled.
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8090
    # A session ends after idle_timeout_s without a touch, and after session_max_s in all.
    idle_timeout_s: int = 120
    session_max_s: int = 900
    # Set when the kiosk is served over HTTPS (a TLS proxy in front): cookies marked Secure.
    secure_cookies: bool = False
    # Each kiosk (client address) gets at most failures_per_window refused sign-ins within
    # failures_window_s and failures_per_day in a day, then none until the oldest leaves: a
    # guesser cannot sweep every cell's lockout budget from one kiosk (docs/kiosk.md).
    failures_per_window: int = 10
    failures_window_s: int = 900
    failures_per_day: int = 30


@dataclass(frozen=True)
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    # A whole AGI conversation (PIN prompts included) must finish within this many seconds.
    session_timeout_s: float = 60.0
    # Each reply of Asterisk's to a command must arrive within this many seconds.
    read_timeout_s: float = 20.0
    # Only these addresses or networks may connect (Asterisk's); others are closed at once.
    allowed_peers: tuple[str, ...] = ("127.0.0.1", "::1")
    # The secret every request must carry (the first path segment of Asterisk's CC_AGI_URL).
    # The lab creates the file (mode 0640); elsewhere the daemon refuses to start without it.
    secret_file: str = "var/agi-secret"
    # The group the secret file is given when created: the one Asterisk runs as, to read it.
    # Empty: the creating process's own group.
    secret_group: str = ""
    # A new connection's whole environment, with the secret, must arrive within this.
    handshake_timeout_s: float = 2.0
    # Sessions that presented the secret, all peers together.
    max_sessions: int = 500
    # Connections from one address that have not yet presented the secret, and from all
    # addresses; when full, the oldest is closed to make room for the new one.
    max_sessions_per_peer: int = 64
    max_handshakes: int = 256


# The AMI secret this repository once shipped: public, so refused outside the lab.
BUILTIN_AMI_SECRET = "callcontrol-ami-secret"


@dataclass(frozen=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callcontrol"
    # The daemon's AMI secret, in this file (mode 0600, readable by the daemon only; the lab
    # creates it with a random secret and renders it into manager.conf) unless ``secret`` is
    # given directly (environment: CALLCONTROL_AMI_SECRET). Never a built-in one outside the lab.
    secret_file: str = "var/ami-secret"
    secret: str = ""
    reconnect_s: float = 2.0


@dataclass(frozen=True)
class AsteriskSettings:
    pjsip_port: int = 5060
    # The called parties: the PSTN trunk (in the lab, the simulated called party's SIPp).
    pstn_host: str = "127.0.0.1"
    pstn_port: int = 5070
    # Where `callcontrol asterisk sync` writes the rendered cell endpoints (pjsip.conf includes
    # it). Empty: pjsip_cells.conf in astetcdir.
    cells_conf: str = ""
    # The daemon rewrites cells_conf and reloads PJSIP (`asterisk -rx`, cli_command) within
    # about a second of any change to a handset (added, enabled, disabled, new password);
    # false: only `callcontrol asterisk sync` does.
    sync_cells: bool = True
    # How the daemon has PJSIP reload the file after a change: "cli" (cli_command -rx, which
    # needs Asterisk's control socket, where any CLI command is allowed) or "none" (it only
    # writes the file; the shipped callcontrol-cells.path unit reloads PJSIP as Asterisk's user).
    reload_cells: str = "cli"
    # How to run Asterisk's CLI (`asterisk -rx`, to reload PJSIP): the command's first words,
    # without -rx. The lab sets its chroot form (chroot ROOT asterisk -C FILE).
    cli_command: tuple[str, ...] = ("asterisk",)
    # Asterisk's own folders, as Asterisk sees them (asterisk.conf [directories], written by
    # `callcontrol asterisk render`): Debian's by default. astetcdir is where the rendered files
    # go. astmoddir empty: the first of /usr/lib/*/asterisk/modules, /usr/lib/asterisk/modules.
    astetcdir: str = "/etc/asterisk"
    astmoddir: str = ""
    astrundir: str = "/var/run/asterisk"
    astspooldir: str = "/var/spool/asterisk"
    astlogdir: str = "/var/log/asterisk"
    astdbdir: str = "/var/lib/asterisk"
    # The address SIP (UDP) and RTP bind to, for the cell handsets and the trunk.
    pjsip_host: str = "127.0.0.1"
    # Seconds that Dial lets the called party ring.
    ring_timeout_s: int = 45
    # The officers' listening desk (a SIP endpoint that answers calls originated to it).
    officers_host: str = "127.0.0.1"
    officers_port: int = 5090
    # The PJSIP endpoints an officer may listen in from (calls listen --officer DESK): any other
    # is refused and audited. "officers" is the desk data/asterisk/pjsip.conf defines.
    officer_desks: tuple[str, ...] = ("officers",)
    # The journal where Asterisk writes each call's acceptance and end (the daemon reads it to
    # settle calls it did not hear end), as the daemon and Asterisk see it. Required by the
    # daemon; the lab sets it in the settings file it writes.
    journal_file: str = ""
    # The daemon moves the journal aside (to journal_file.<UTC time>, next to it) once it is this
    # long, or its first line this old; `callcontrol journal rotate` does it at once.
    journal_rotate_bytes: int = 16 * 1024 * 1024
    journal_rotate_s: int = 86400
    rtp_start: int = 20000
    rtp_end: int = 24999


@dataclass(frozen=True)
class ProvisionSettings:
    """What `callcontrol handset provision` writes into a desk phone's file (docs/deploy.md)."""

    # The address (name or IP) the handsets reach Asterisk at. Required to provision.
    sip_server: str = ""
    # udp or tls (tls: SRTP is required too; Asterisk's transport-tls, docs/deploy.md).
    transport: str = "tls"
    # 0: the transport's usual port (5060 for udp, 5061 for tls).
    sip_port: int = 0
    # The phones' own admin (and user) password, for their menus: made random (0600) if missing.
    admin_password_file: str = "var/handset-admin-password"
    # A number the handset calls as soon as it is lifted (hotline); empty: none. It must be
    # [site] two_stage_number, so that the lifted handset is asked for the number to call.
    hotline: str = ""
    # The provisioning server the phones are locked to; empty: left as the phone has it.
    provisioning_url: str = ""
    # The CA that signed Asterisk's TLS certificate: a URL the Yealink fetches it from, and a
    # PEM file whose text goes into the Poly file. Empty: the phone's built-in CAs only.
    ca_cert_url: str = ""
    ca_cert_file: str = ""


@dataclass(frozen=True)
class LabSettings:
    # The Debian sid root holding Asterisk 22 and SIPp, built once and shared between checkouts.
    root: str = "~/.cache/callcontrol/asterisk-root"
    # Several labs may share one root (for instance `make run` and the tests); each has a name.
    name: str = "default"
    # Use an asterisk already on the PATH (20 or newer) instead of the root: auto, yes or no.
    use_system_asterisk: str = "auto"
    # True only where this configuration runs the lab (make run, the tests, the benchmark):
    # conveniences that would be holes in a prison (the built-in AMI secret, a PIN given on the
    # command line) are refused unless it is set. `make run` sets it through the environment
    # (CALLCONTROL_LAB_ENABLED=true).
    enabled: bool = False
    # The lab's simulated handsets' SIP passwords (cell -> password, mode 0600): the database
    # keeps only digest hashes, so `callcontrol cell add` (with [lab] enabled) and the load's
    # provisioning write the passwords they make here for `callcontrol-sim` to dial with.
    handsets_file: str = "var/lab-handsets.json"


# --- operations: logs and metrics (docs/metrics.md) ----------------------------------------


@dataclass(frozen=True)
class LogSettings:
    # "text": one readable line per event; "json": one JSON object a line, with the call's
    # Asterisk unique id ("call") on every line logged while handling that call.
    format: str = "text"
    # DEBUG, INFO, WARNING or ERROR; `callcontrol run --log-level` overrides it.
    level: str = "INFO"


@dataclass(frozen=True)
class MetricsSettings:
    # Who may read GET /metrics on the [http] server: "token" (Authorization: Bearer with the
    # token in token_file), "open" (anyone who reaches [http] host:port) or "off" (no /metrics).
    access: str = "token"
    # The scrape token (created by the daemon, mode 0640, group token_group: Prometheus's, so
    # that its `credentials_file` can read it).
    token_file: str = "var/metrics-token"
    token_group: str = ""
    # The database's figures (calls live, recordings pending, ledger totals) are this old at most.
    db_cache_s: float = 15.0


# --- end of operations settings --------------------------------------------------------------


@dataclass(frozen=True)
class ListenSettings:
    # Listening in from the console's page (docs/listen.md): Asterisk sends what ChanSpy hears
    # to the daemon's AudioSocket server here. Port 0: one the system picks at each start, so
    # no other local account can take it first; keep the host on loopback.
    audiosocket_host: str = "127.0.0.1"
    audiosocket_port: int = 0
    # Listens from browsers at once, in all and per person; more are refused until one ends.
    max_streams: int = 8
    max_per_person: int = 2


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    site: SiteSettings = field(default_factory=SiteSettings)
    billing: BillingSettings = field(default_factory=BillingSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    kiosk: KioskSettings = field(default_factory=KioskSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    provision: ProvisionSettings = field(default_factory=ProvisionSettings)
    lab: LabSettings = field(default_factory=LabSettings)
    log: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    # Relative paths in the settings are taken from this folder (the working folder by default).
    base_dir: Path = field(default_factory=Path.cwd)
    # The settings file these were read from (None: defaults and environment only), for the
    # processes the daemon starts (the recording worker), which read the same.
    config_file: Path | None = None

    def path(self, value: str) -> Path:
        """A path setting made absolute: ``~`` expanded, relative to ``base_dir``."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def pin_secret(self, create: bool = False) -> bytes:
        """The key for PIN hashes. With ``create``, a missing key file is made."""
        if self.security.pin_secret:
            return self.security.pin_secret.encode()
        from callcontrol import private_files  # 0600 whatever the umask; too open: tightened

        path = self.path(self.security.pin_secret_file)
        if not path.exists():
            if not create:
                raise ConfigError(
                    f"PIN secret file {path} is missing: PINs cannot be checked without it"
                )
            private_files.private_dir(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        private_files.tighten(path)
        value = path.read_text().strip()
        if len(value) < 16:
            raise ConfigError(f"PIN secret in {path} is too short (at least 16 characters)")
        return value.encode()

    def pin_keys(self, create: bool = False) -> PinKeys:
        """The PIN secret and the previous ones still kept ([security]
        pin_previous_secrets_file; missing: none)."""
        from callcontrol import private_files
        from callcontrol.domain.pins import PinKeys

        current = self.pin_secret(create)
        path = self.path(self.security.pin_previous_secrets_file)
        if not path.exists():
            return PinKeys(current)
        private_files.tighten(path)
        previous = tuple(line.strip().encode() for line in path.read_text().splitlines())
        if any(len(p) < 16 for p in previous if p):
            raise ConfigError(f"a previous PIN secret in {path} is too short (16 characters)")
        return PinKeys(current, tuple(p for p in previous if p))

    def ami_secret(self, create: bool = False) -> str:
        """The daemon's AMI secret: ``[ami] secret``, else the content of ``[ami] secret_file``.

        With ``create``, a missing file is made with a random secret (mode 0600): the lab does
        so before it renders manager.conf. Refused (ConfigError): an empty secret, one that a
        manager.conf line cannot hold, a file others may read, and, unless ``[lab] enabled``,
        the secret this repository once shipped (anyone could read it)."""
        value, where = self.ami.secret, "[ami] secret"
        if not value:
            path = self.path(self.ami.secret_file)
            where = f"AMI secret file {path}"
            if not path.exists():
                if not create:
                    raise ConfigError(
                        f"{where} is missing: write a long random secret into it (mode 0600) "
                        "and the same into Asterisk's manager.conf, or set [ami] secret"
                    )
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(24) + "\n")
            if path.stat().st_mode & 0o007:
                raise ConfigError(f"{where} is readable by others: chmod 600 it")
            value = path.read_text().strip()
        if not value:
            raise ConfigError(f"{where} is empty: the daemon's AMI account needs a secret")
        if any(not ch.isprintable() or ch.isspace() or ch == ";" for ch in value):
            raise ConfigError(f"{where} holds spaces, ';' or control characters")
        if value == BUILTIN_AMI_SECRET and not self.lab.enabled:
            raise ConfigError(
                f"{where} is the built-in lab secret, which anyone can read: outside the lab "
                "([lab] enabled) use a long random one"
            )
        return value


def journal_path(settings: Settings) -> Path:
    """Where Asterisk writes the call journal, as the daemon (and Asterisk) see it ([asterisk]
    journal_file: required, there is no default to fall back on)."""
    if not settings.asterisk.journal_file:
        raise ConfigError(
            "[asterisk] journal_file is not set: the file Asterisk's dialplan writes each call's "
            "acceptance and end to (e.g. /var/spool/asterisk/callcontrol/journal.log)"
        )
    return settings.path(settings.asterisk.journal_file)


def recordings_spool(settings: Settings) -> Path:
    """Where MixMonitor streams recorded calls, as the daemon (and Asterisk) see it
    ([recording] spool_dir: required)."""
    if not settings.recording.spool_dir:
        raise ConfigError(
            "[recording] spool_dir is not set: the folder Asterisk's MixMonitor writes calls "
            "to while they run (e.g. /var/spool/asterisk/callcontrol/recordings)"
        )
    return settings.path(settings.recording.spool_dir)


_SECTIONS = (
    "database",
    "security",
    "site",
    "billing",
    "recording",
    "http",
    "console",
    "kiosk",
    "agi",
    "ami",
    "asterisk",
    "provision",
    "lab",
    "log",
    "metrics",
)


def _coerce(value: Any, kind: Any, where: str) -> Any:
    if kind == tuple[str, ...]:
        if isinstance(value, str):  # from the environment: comma-separated
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of text, got {value!r}")
    if kind == tuple[tuple[str, tuple[str, ...]], ...]:
        if isinstance(value, dict):
            return tuple(
                (str(k), _coerce(v, tuple[str, ...], f"{where}.{k}"))
                for k, v in sorted(value.items())
            )
        raise ConfigError(f"{where}: expected a table of lists, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
    if kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value


def _section(cls: type, given: dict[str, Any], env: dict[str, str], name: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(given) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        kind = hints[f.name]
        if f.name in given:
            values[f.name] = _coerce(given[f.name], kind, f"[{name}] {f.name}")
        env_name = f"CALLCONTROL_{name.upper()}_{f.name.upper()}"
        if env_name in env:
            values[f.name] = _coerce(env[env_name], kind, env_name)
    return cls(**values)


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read the settings. ``path`` (or ``CALLCONTROL_CONFIG``) names an optional TOML file."""
    env = dict(os.environ) if env is None else env
    path = path or env.get("CALLCONTROL_CONFIG") or None
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path:
        p = Path(path).expanduser()
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"configuration file {p} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"configuration file {p} is not valid TOML: {e}") from None
    unknown = set(data) - set(_SECTIONS) - {"base_dir"}
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    if "base_dir" in data:
        base_dir = Path(str(data["base_dir"])).expanduser()
    if "CALLCONTROL_BASE_DIR" in env:
        base_dir = Path(env["CALLCONTROL_BASE_DIR"]).expanduser()
    hints = get_type_hints(Settings)
    sections = {}
    for name in _SECTIONS:
        given = data.get(name, {})
        if not isinstance(given, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _section(hints[name], given, env, name)
    config_file = Path(path).expanduser().resolve() if path else None
    settings = Settings(base_dir=base_dir.resolve(), config_file=config_file, **sections)
    _validate(settings)
    return settings


def _validate_console(c: ConsoleSettings) -> None:
    if not 60 <= c.idle_timeout_s <= c.absolute_timeout_s <= 7 * 86400:
        raise ConfigError(
            "[console] needs 60 <= idle_timeout_s <= absolute_timeout_s <= 604800 (seconds)"
        )
    if min(c.login_failures_per_user, c.login_failures_per_address, c.login_window_s) < 1:
        raise ConfigError("[console] login_failures_per_* and login_window_s must be at least 1")
    if c.public_origin and not re.fullmatch(
        r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?", c.public_origin
    ):
        raise ConfigError(
            "[console] public_origin must be https://HOST or https://HOST:PORT, without a path "
            f"(not {c.public_origin!r}): browsers keep the console's Secure cookie only on https"
        )


def _validate(s: Settings) -> None:
    _validate_console(s.console)
    if s.site.emergency_calls not in ("refuse", "allow"):
        raise ConfigError("[site] emergency_calls must be 'refuse' or 'allow'")
    if s.site.two_stage_number and not re.fullmatch(r"[0-9*]{1,8}", s.site.two_stage_number):
        raise ConfigError("[site] two_stage_number must be empty or 1 to 8 of 0-9 and *")
    code = s.site.balance_code
    if code and not re.fullmatch(r"\*[0-9*]{1,7}", code):
        raise ConfigError("[site] balance_code must be empty or * and 1 to 7 of 0-9 and *")
    if code and code == s.site.two_stage_number:
        raise ConfigError("[site] balance_code cannot be the two_stage_number")
    if not 1 <= s.site.two_stage_timeout_s <= 30:
        raise ConfigError("[site] two_stage_timeout_s must be 1 to 30 seconds")
    if s.lab.use_system_asterisk not in ("auto", "yes", "no"):
        raise ConfigError("[lab] use_system_asterisk must be 'auto', 'yes' or 'no'")
    for name, port in (
        ("agi", s.agi.port),
        ("ami", s.ami.port),
        ("asterisk pjsip_port", s.asterisk.pjsip_port),
        ("asterisk pstn_port", s.asterisk.pstn_port),
    ):
        if not 0 < port < 65536:
            raise ConfigError(f"{name} port {port} is out of range")
    if s.provision.transport not in ("udp", "tls"):
        raise ConfigError("[provision] transport must be 'udp' or 'tls'")
    if not 0 <= s.provision.sip_port < 65536:
        raise ConfigError(f"[provision] sip_port {s.provision.sip_port} is out of range")
    if s.billing.rounding not in ("per_second", "per_started_minute"):
        raise ConfigError("[billing] rounding must be 'per_second' or 'per_started_minute'")
    if s.billing.accept_digit not in tuple("0123456789"):
        raise ConfigError("[billing] accept_digit must be one digit")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(s.site.timezone)
    except Exception:
        raise ConfigError(f"[site] timezone {s.site.timezone!r} is not a known time zone") from None
    if not 1 <= s.site.pin_tries_per_call <= 10:
        raise ConfigError("[site] pin_tries_per_call must be between 1 and 10")
    if not 60 <= s.recording.checkpoint_interval_s <= 3600:
        raise ConfigError("[recording] checkpoint_interval_s must be between 60 and 3600")
    if s.recording.worker not in RECORDING_WORKERS:
        raise ConfigError(
            "[recording] worker must be 'spawn' (the daemon runs the recording worker) or "
            "'external' (the site runs `callcontrol recordings worker`), "
            f"not {s.recording.worker!r}"
        )
    if not s.asterisk.cli_command:
        raise ConfigError("[asterisk] cli_command is empty: the command that runs Asterisk's CLI")
    _validate_agi(s.agi)
    _validate_operations(s)


def _validate_operations(s: Settings) -> None:
    if s.log.format not in ("text", "json"):
        raise ConfigError("[log] format must be 'text' or 'json'")
    if s.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("[log] level must be DEBUG, INFO, WARNING or ERROR")
    if s.metrics.access not in ("token", "open", "off"):
        raise ConfigError("[metrics] access must be 'token', 'open' or 'off'")
    if not 0 <= s.metrics.db_cache_s <= 3600:
        raise ConfigError("[metrics] db_cache_s must be between 0 and 3600")
    if s.asterisk.reload_cells not in ("cli", "none"):
        raise ConfigError("[asterisk] reload_cells must be 'cli' or 'none'")


def _validate_agi(agi: AgiSettings) -> None:
    import ipaddress

    for peer in agi.allowed_peers:
        try:
            ipaddress.ip_network(peer.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"[agi] allowed_peers: {peer!r} is not an IP address or network "
                "(e.g. 127.0.0.1, ::1, 10.0.0.0/24)"
            ) from None
    if min(agi.max_sessions, agi.max_sessions_per_peer, agi.max_handshakes) < 1:
        raise ConfigError("[agi] max_sessions, max_sessions_per_peer and max_handshakes: 1+")
    if not 0 < agi.handshake_timeout_s <= agi.read_timeout_s:
        raise ConfigError("[agi] handshake_timeout_s must be above 0 and at most read_timeout_s")


def with_overrides(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy with some settings replaced, for tests and the lab: with_overrides(s, agi={...})."""
    changes = {
        name: replace(getattr(settings, name), **values) for name, values in sections.items()
    }
    return replace(settings, **changes)
