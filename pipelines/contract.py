"""The data contract (``shared/data-contract.md``) as code: feeds, columns, types, rules.

Ingestion, the simulator and the tests all read these definitions, so a change to the
contract is a change here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipelines import epoch as epochs

HOUR_RE = epochs.PATTERN
"""A drop folder / epoch name: the UTC hour ``YYYY-MM-DDTHH``."""

FORMATS = ("parquet", "csv.gz", "csv", "jsonl.gz", "jsonl")
"""File extensions the contract allows, longest suffix first (so ``csv.gz`` wins over ``csv``)."""

MANIFEST = "_manifest.json"
TIMESTAMP_MACROS = """
CREATE OR REPLACE TEMP MACRO clock_unit_ms(ts) AS
    CASE WHEN ts IS NULL THEN NULL WHEN epoch_us(ts) % 1000000 = 0 THEN 1000 WHEN epoch_us(ts) % 100000 = 0 THEN 100
         WHEN epoch_us(ts) % 10000 = 0 THEN 10 ELSE 0 END;
CREATE OR REPLACE TEMP MACRO fits_round_trip(compute_ms, issued_at, responded_at, unit_ms) AS
    compute_ms <= epoch_ms(responded_at) - epoch_ms(issued_at) + 2 + unit_ms;
"""
"""The contract allows times written to the second; milliseconds are optional.
``clock_unit_ms(ts)``: the precision one time may have been written to (1000 for a whole
second, 100 or 10 for tenths or hundredths, else 0); a file's precision is the finest of each
column's times (``features.POW_CLOCK_CTE``), so a millisecond writer's occasional whole second is not
read as coarse. ``fits_round_trip``: a worker's ``compute_ms`` is no longer than the round
trip the backend observed, within 2 ms and that precision. Written to the second, a 300 ms
round trip reads as 0 s: every device of a network written so was rejected as faking its
timings when the bound was 2 ms alone."""
IP_MACROS = """
CREATE OR REPLACE TEMP MACRO ipv6_groups(ip) AS
    CASE WHEN contains(ip, '::') THEN list_concat(
             list_filter(string_split(split_part(ip, '::', 1), ':'), lambda g: g <> ''),
             list_transform(range(8 - len(list_filter(string_split(replace(ip, '::', ':'), ':'), lambda g: g <> ''))),
                            lambda g: '0'),
             list_filter(string_split(split_part(ip, '::', 2), ':'), lambda g: g <> ''))
         ELSE string_split(ip, ':') END;
CREATE OR REPLACE TEMP MACRO ip_site(ip) AS
    CASE WHEN ip IS NULL OR NOT contains(ip, ':') THEN ip
         WHEN contains(ip, '.') THEN split_part(ip, ':', -1)
         ELSE array_to_string(list_transform(ipv6_groups(lower(trim(ip)))[1:4],
                                             lambda g: coalesce(nullif(ltrim(g, '0'), ''), '0')), ':') || '::/64' END;
CREATE OR REPLACE TEMP MACRO mailbox(email) AS
    CASE WHEN NOT contains(email, '@') THEN NULL
         WHEN lower(split_part(email, '@', 2)) IN ('gmail.com', 'googlemail.com')
         THEN replace(regexp_replace(lower(split_part(email, '@', 1)), '\\+.*$', ''), '.', '') || '@gmail.com'
         ELSE regexp_replace(lower(split_part(email, '@', 1)), '\\+.*$', '') || '@' || lower(split_part(email, '@', 2)) END;
"""
"""``ip`` is "public IPv4/IPv6 as the backend saw it". Behind one IPv4 NAT a home's devices share
one address; over IPv6 each device (each VM, too) has its own address in the home's /64, and
privacy addresses rotate within it. ``ip_site(ip)``: the IPv4 address itself (an IPv4-mapped
``::ffff:a.b.c.d`` as that IPv4), or the IPv6 address's /64 (``2a02:a0b:c0d:1::/64``), in any
spelling (leading zeros, ``::``, case). Wherever "same address" stands for "same machine or LAN"
(co-batched contention, one card's identity seen from a few addresses, cross-listing, shared
addresses between accounts) the site is compared: with each device's own IPv6 address, the
virtualized GPUs of a 600-device network were 3 of 24 caught (24 over IPv4).

``mailbox(email)``: the mailbox an address delivers to, lower case, without a ``+tag`` (which
Gmail, Outlook and most providers deliver to the untagged address) and, at Gmail, without dots
(``Lena.Nguyen+rent@googlemail.com`` -> ``lenanguyen@gmail.com``); null for a string without
``@``. One mailbox is one person's, whatever spelling each account used."""
FREE_MAIL = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "icloud.com", "me.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de", "mail.ru",
    "yandex.ru", "qq.com", "163.com", "126.com", "aol.com", "zoho.com", "tutanota.com",
)  # fmt: skip
"""Mail vendors' domains: anyone may hold a mailbox there, so a domain of these is nobody's own
(a release publishes them only as the class ``free_mail``; the sybil stage never reads one as an
organisation's domain, however few of the network's accounts hold it)."""

GPU_UUID_MACRO = r"""
CREATE OR REPLACE TEMP MACRO gpu_uuid(u) AS
    CASE WHEN starts_with(u, 'GPU-') AND length(u) = 40 AND u[5:] = lower(u[5:]) THEN u
         WHEN regexp_full_match(u, '(?i)\s*(gpu-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\s*')
         THEN 'GPU-' || lower(regexp_replace(trim(u), '(?i)^gpu-', ''))
         ELSE u END;
"""
"""``gpu_uuid(u)``: a card's UUID as NVML spells it, ``GPU-`` and 32 lower-case hex digits in
the 8-4-4-4-12 groups, whatever case, prefix or surrounding blanks a writer used
(``GPU-5F1D...``, ``5f1d...``, `` GPU-5f1d...``); anything else (a ``MIG-`` instance's UUID,
a cloud's own id) as written. One card is one identity: a thirteenth network written by others
copied honest cards' UUIDs in upper case, without the prefix or after a blank, and 9 of its 15
such copies were not compared with the card they copied."""
_INDEX = r"\d{1,9}(\.0{1,9})?"
_VALUE = r"-?\d{1,18}(\.\d{1,9})?"
_TRIPLE = rf"\[\s*{_INDEX}\s*,\s*{_INDEX}\s*,\s*{_VALUE}\s*\]"
SAMPLES_RE = rf"\s*\[\s*({_TRIPLE}\s*(,\s*{_TRIPLE}\s*)*)?\]\s*"
"""``samples``: a JSON list of ``[i, j, value]`` triples (checked before parsing). Numbers may be
written as floats, as a worker that keeps the fp32 product writes them (``[7381.0, 6945.0,
-1927.0]``): an index must then be integral, while a value with a fraction is a wrong answer
(a bad sample, counted by verification), not a malformed row."""
BASE_UNITS_PER_IO = 10**8

# --- limits and text forms: what a value must look like before it is cast -------------------

TIME_TOLERANCE_S = 120
"""A row's time column must lie inside its hour, give or take this many seconds of clock skew
(or be a late row: ``LATE_ROW_HOURS``)."""
LATE_ROW_HOURS = 24
"""A row whose time column is up to this many hours older than its folder's hour is a late
delivery (a heartbeat or a report held by a queue and sent with the next drop; two networks
written by others do it, one for 3% of an hour's rows): it lands in the folder's hour with its
own time. Older rows are quarantined; a row later than its hour never lands."""
ANSWER_GRACE_S = 3600
"""How long after its hour's end (plus ``TIME_TOLERANCE_S``) a feed's answer time may fall
(``Feed.answer_columns``): a challenge issued in the hour's last minute is answered in the next
(a sixteenth network written by others answered VRAM challenges issued at :59 two to three
minutes later, and the answers, right ones, were quarantined as "after the hour"); an hour bounds
any challenge's timeout."""
EARLIEST_TIMESTAMP = "2000-01-01 00:00:00"
"""No timestamp in any feed may be earlier than this (nor later than its hour plus tolerance, or
for an answer ``ANSWER_GRACE_S``)."""
MAX_TEXT_CHARS = 4096
"""Longest string value accepted in any column except ``samples`` (bounded by the line size)."""
MAX_LINE_BYTES = 1 << 20
"""Longest CSV or JSONL line; a longer line is quarantined, the rest of the file is read."""
MAX_DECOMPRESSED_BYTES = 1 << 30
"""A ``.gz`` file that inflates past this is not read further and rejects its hour (a decompression bomb)."""
MAX_MANIFEST_BYTES = 1 << 20
MAX_MANIFEST_DEPTH = 4
MONEY_MAX_INTEGER_DIGITS = 9
MONEY_MAX_SCALE = 8
"""Decimal amounts (``amount_io``, ``paid_usd``): at most 9 integer digits (below the token's
total supply) and 8 decimals, plain notation only; so every amount fits in int64 base units."""

TEXT_FORMS: dict[str, tuple[str, str]] = {
    "TIMESTAMP": (
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)?",
        "an ISO 8601 timestamp (offsets are converted to UTC)",
    ),
    # a zero fraction is the same whole number: pandas writes a nullable integer column (power_limit_w,
    # null on Apple) as float, 450.0, in CSV, JSON and Parquet alike; any other fraction is refused
    "BIGINT": (r"-?\d{1,19}(\.0+)?", "a whole number in plain digits (450.0 accepted)"),
    "INTEGER": (r"-?\d{1,10}(\.0+)?", "a whole number in plain digits (450.0 accepted)"),
    "UBIGINT": (r"-?\d{1,20}", "an unsigned 64-bit whole number in plain digits"),
    "DOUBLE": (r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,3})?", "a finite number"),
    # CSV has no boolean: pandas writes True/False, PostgreSQL's COPY t/f, other exports 1/0 or yes/no
    "BOOLEAN": (r"(?i)(true|false|t|f|1|0|yes|no|y|n)", "true or false (t/f, 1/0, yes/no)"),
    "DECIMAL(38,8)": (
        rf"-?\d{{1,{MONEY_MAX_INTEGER_DIGITS}}}(\.\d{{1,{MONEY_MAX_SCALE}}})?",
        f"a plain decimal with at most {MONEY_MAX_INTEGER_DIGITS} integer digits and {MONEY_MAX_SCALE} decimals",
    ),
}
"""Per DuckDB type: (RE2 pattern the raw text must match in full, what the reason says).
Strict on purpose: no hex, underscore or exponent forms and no non-zero fraction for integers and
money; the 64-bit seed takes plain digits only (a float seed has already lost its low bits). A
negative seed is a signed 64-bit store of the unsigned one (Java, Spark, a Parquet INT64 without
the unsigned annotation) and is read as its two's complement (``-1`` is 2^64 - 1): such a writer's
every seed above 2^63, half of them, was quarantined and the run stopped at its first hour. In a
file that writes other values above 2^63 unsigned, a negative one is a broken row
(``ingest._unsigned_writers``)."""


NULL_SPELLINGS = ("", "null", "none", "nil", "nan", "na", "n/a", "[n/a]")
"""How writers spell "no value" in a nullable column (in the casings they use, untrimmed:
``Column.null_texts``): an empty JSON string, Python's ``str(None)``, pandas' ``NaN``,
nvidia-smi's ``[N/A]``. Such a value lands
as null: left as text, one ``""`` or ``"[N/A]"`` would be an identity, batch or referrer that
thousands of unrelated rows share."""

NVML_UNAVAILABLE = (
    "not supported", "[not supported]", "notsupported", "not available", "[not available]",
    "unknown", "[unknown]", "unknown error", "[unknown error]", "insufficient permissions",
    "[insufficient permissions]", "-", "--", "?",
)  # fmt: skip
"""What NVML and nvidia-smi report for a reading a card does not have (a GeForce board's serial),
in a column marked ``nvml``; a value of zeros and separators only (``0``,
``GPU-00000000-0000-0000-0000-000000000000``, ``00000000:00:00.0``) means the same."""

NVML_ZEROS = r"(?i)(gpu-)?[0\-:. ]+"
"""RE2 pattern (full match) of an all-zero NVML identity."""


def _casings(words: tuple[str, ...]) -> frozenset[str]:
    """``words`` as writers case them (``none``, ``None``, ``NONE``, ``[Not Supported]``, ``NaN``)."""
    out = {f(w) for w in words for f in (str.lower, str.upper, str.capitalize, str.title)}
    return frozenset(out | ({"NaN"} if "nan" in words else set()))


@dataclass(frozen=True)
class Column:
    """One contract column: its DuckDB type and whether null is allowed."""

    name: str
    type: str
    nullable: bool = False
    allowed: tuple[str, ...] = ()
    """For enumerations: the allowed values (checked after casting)."""
    nvml: bool = False
    """An NVML identity reading: its "not available" spellings (``NVML_UNAVAILABLE``, all
    zeros) are null too."""
    aliases: tuple[tuple[str, str], ...] = ()
    """For enumerations: (another writer's spelling in lower case, the allowed value it means),
    stored in the contract's spelling (an extension: ``OS_ALIASES``, ``VIRTUALIZATION_ALIASES``)."""
    canonical: str = ""
    """A SQL macro (one argument) that stores the value in one spelling (an extension:
    ``gpu_uuid``, ``GPU_UUID_MACRO``)."""

    @property
    def null_texts(self) -> frozenset[str]:
        """The exact texts that land as null in this column (none for a required one): the
        spellings of ``NULL_SPELLINGS`` (and for an NVML reading ``NVML_UNAVAILABLE``) as writers
        case them, except an allowed value (``NONE`` is a virtualization mode). Compared as
        they are, a hash lookup: lower-casing every value cost ~20% of ingest."""
        if not self.nullable:
            return frozenset()
        allowed = {a.lower() for a in self.allowed}
        words = tuple(w for w in NULL_SPELLINGS + (NVML_UNAVAILABLE if self.nvml else ()) if w not in allowed)
        return _casings(words)


@dataclass(frozen=True)
class Feed:
    """One drop file kind (``hardware``, ``pow`` ...) and its columns."""

    name: str
    columns: tuple[Column, ...]
    required: bool
    key: tuple[str, ...] = ()
    """Columns that identify a row; a repeated key within one hour is quarantined."""
    time_column: str | None = None
    """The column that must fall inside the row's hour (``TIME_TOLERANCE_S``); every other
    timestamp must lie between ``EARLIEST_TIMESTAMP`` and the hour's end plus tolerance (an
    ``answer_columns`` one, ``ANSWER_GRACE_S`` more)."""
    answer_columns: tuple[str, ...] = ()
    """Timestamps of an answer to something issued in the hour: they may fall up to
    ``ANSWER_GRACE_S`` after the hour's end."""
    extra_checks: tuple[tuple[str, str], ...] = field(default=())
    """(SQL predicate over the typed row that must hold, reason shown when it does not)."""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(
    name: str,
    type_: str,
    nullable: bool = False,
    allowed: tuple[str, ...] = (),
    nvml: bool = False,
    aliases: tuple[tuple[str, str], ...] = (),
    canonical: str = "",
) -> Column:
    return Column(name, type_, nullable, allowed, nvml, aliases, canonical)


OS_ALIASES = (("darwin", "macos"), ("osx", "macos"), ("mac os x", "macos"), ("mac", "macos"), ("win32", "windows"))
"""``os`` as programs name it: Python's ``platform.system()`` and ``sys.platform``, Node's
``os.platform()`` and Go's ``runtime.GOOS`` say ``Darwin``/``darwin`` for macOS and ``win32`` for
Windows. Written so, every Mac's hardware report was quarantined and its owner went unpaid."""

VIRTUALIZATION_ALIASES = tuple(
    (spelling, mode)
    for number, mode in enumerate(("NONE", "PASSTHROUGH", "VGPU", "HOST_VGPU", "HOST_VSGA"))
    for spelling in (str(number), f"nvml_gpu_virtualization_mode_{mode.lower()}")
)
"""``virtualization_mode`` as pynvml returns it (``nvmlDeviceGetVirtualizationMode``: the
integer 0-4 of ``nvmlGpuVirtualizationMode_t``) or as its constant's name."""


VRAM_MAX_MIB = 4 * 1024 * 1024
"""The most memory a device may report, in MiB (4 TiB). The largest GPU memory today is a B200's
~180 GiB and an Apple M3 Ultra's 512 GiB of unified memory; NVML's ``memory.total`` is in bytes,
and a writer that forgets to convert reports even a 2 GiB card as 2^31 "MiB". Without this rule
every device of such a network claimed impossible memory and was held in probation (491 of 494
honest devices of a 600-device network)."""

HARDWARE = Feed(
    "hardware",
    (
        _c("ts", "TIMESTAMP"),
        _c("device_id", "VARCHAR"),
        _c("account_id", "VARCHAR"),
        _c("host_fingerprint", "VARCHAR"),
        _c("ip", "VARCHAR"),
        _c("asn", "BIGINT"),
        _c("country", "VARCHAR"),
        _c("os", "VARCHAR", allowed=("linux", "windows", "macos"), aliases=OS_ALIASES),
        _c("worker_version", "VARCHAR"),
        _c("gpu_index", "INTEGER"),
        _c("gpu_model", "VARCHAR"),
        _c("gpu_uuid", "VARCHAR", True, nvml=True, canonical="gpu_uuid"),
        _c("gpu_serial", "VARCHAR", True, nvml=True),
        _c("pci_bus_id", "VARCHAR", True, nvml=True),
        _c("vram_total_mb", "BIGINT"),
        _c("driver_version", "VARCHAR", True),
        _c("cuda_version", "VARCHAR", True),
        _c(
            "virtualization_mode",
            "VARCHAR",
            True,
            ("NONE", "PASSTHROUGH", "VGPU", "HOST_VGPU", "HOST_VSGA"),
            aliases=VIRTUALIZATION_ALIASES,
        ),
        _c("mig_mode", "BOOLEAN", True),
        _c("power_limit_w", "INTEGER", True),
        _c("sm_clock_max_mhz", "INTEGER", True),
        _c("cpu_model", "VARCHAR"),
        _c("cpu_cores", "INTEGER"),
        _c("ram_gb", "INTEGER"),
        _c("bandwidth_down_mbps", "DOUBLE"),
        _c("bandwidth_up_mbps", "DOUBLE"),
    ),
    required=True,
    key=("device_id", "ts"),
    time_column="ts",
    extra_checks=(
        ("vram_total_mb > 0", "vram_total_mb must be positive"),
        (  # NVML reports memory in bytes; the contract's column is MiB, and no GPU has 4 TiB
            f"vram_total_mb <= {VRAM_MAX_MIB}",
            f"vram_total_mb must be MiB (at most {VRAM_MAX_MIB}, 4 TiB): bytes or KiB written as MiB?",
        ),
        ("gpu_index >= 0", "gpu_index must be >= 0"),
        ("length(country) = 2", "country must be an ISO 3166 alpha-2 code"),
    ),
)

POW = Feed(
    "pow",
    (
        _c("challenge_id", "VARCHAR"),
        _c("batch_id", "VARCHAR", True),
        _c("device_id", "VARCHAR"),
        _c("kind", "VARCHAR", allowed=("matmul", "vram")),
        _c("issued_at", "TIMESTAMP"),
        _c("responded_at", "TIMESTAMP", True),
        _c("status", "VARCHAR", allowed=("ok", "timeout", "error")),
        _c("n", "BIGINT"),
        _c("seed", "UBIGINT"),
        _c("compute_ms", "DOUBLE", True),
        _c("result_digest", "VARCHAR", True),
        _c("samples", "VARCHAR", True),
    ),
    required=True,
    key=("challenge_id",),
    time_column="issued_at",
    answer_columns=("responded_at",),
    extra_checks=(
        ("n > 0 AND n <= 262144", "n must be in 1..262144 (fp32 accumulation stays exact)"),
        (
            f"samples IS NULL OR regexp_full_match(samples, '{SAMPLES_RE}')",
            "samples must be JSON [[i, j, value], ...] of numbers (i, j integers >= 0)",
        ),
        ("compute_ms IS NULL OR compute_ms >= 0", "compute_ms must be >= 0"),
        (
            "responded_at IS NULL OR responded_at >= issued_at",
            "responded_at is before issued_at",
        ),
        (
            "responded_at IS NULL OR responded_at <= issued_at + INTERVAL 1 HOUR",
            "responded_at is more than an hour after issued_at",
        ),
    ),
)

UPTIME = Feed(
    "uptime",
    (
        _c("ts", "TIMESTAMP"),
        _c("device_id", "VARCHAR"),
        _c("source", "VARCHAR", allowed=("ping", "heartbeat")),
        _c("ok", "BOOLEAN"),
        _c("latency_ms", "DOUBLE", True),
    ),
    required=True,
    key=("device_id", "source", "ts"),
    time_column="ts",
)

ACCOUNTS = Feed(
    "accounts",
    (
        _c("account_id", "VARCHAR"),
        _c("created_at", "TIMESTAMP"),
        _c("email", "VARCHAR"),
        _c("wallet", "VARCHAR"),
        _c("signup_ip", "VARCHAR"),
        _c("referrer_account_id", "VARCHAR", True),
    ),
    required=False,
    key=("account_id",),
    time_column=None,  # accounts that existed before the first drop arrive with old dates
)

STAKE_EVENTS = Feed(
    "stake_events",
    (
        _c("event_id", "VARCHAR"),
        _c("ts", "TIMESTAMP"),
        _c("wallet", "VARCHAR"),
        _c("device_id", "VARCHAR", True),
        _c("kind", "VARCHAR", allowed=("stake", "unstake", "delegate", "undelegate")),
        _c("amount_io", "DECIMAL(38,8)"),
        _c("funder_wallet", "VARCHAR"),
    ),
    required=False,
    key=("event_id",),
    # the contract does not tie stake events to their folder's hour: stakes placed before the first
    # drop arrive with their own dates (as accounts do); positions count each event from its ts
    time_column=None,
    extra_checks=(("amount_io > 0", "amount_io must be positive"),),
)

JOBS = Feed(
    "jobs",
    (
        _c("job_id", "VARCHAR"),
        _c("client_account_id", "VARCHAR"),
        _c("device_id", "VARCHAR"),
        _c("created_at", "TIMESTAMP"),
        _c("started_at", "TIMESTAMP", True),
        _c("ended_at", "TIMESTAMP"),
        _c(
            "status",
            "VARCHAR",
            allowed=("completed", "cancelled_by_client", "cancelled_by_worker", "failed"),
        ),
        _c("paid_usd", "DECIMAL(38,8)"),
    ),
    required=False,
    key=("job_id",),
    time_column="ended_at",
    extra_checks=(
        ("paid_usd >= 0", "paid_usd must be >= 0"),
        ("ended_at >= created_at", "ended_at is before created_at"),
        (
            "started_at IS NULL OR (started_at >= created_at AND started_at <= ended_at)",
            "started_at is not between created_at and ended_at",
        ),
    ),
)

EXTERNAL_LISTINGS = Feed(
    "external_listings",
    (
        _c("ts", "TIMESTAMP"),
        _c("network", "VARCHAR"),
        _c("gpu_uuid", "VARCHAR", True, nvml=True, canonical="gpu_uuid"),
        _c("host_fingerprint", "VARCHAR", True),
        _c("ip", "VARCHAR"),
    ),
    required=False,
    time_column="ts",
)

FEEDS: dict[str, Feed] = {f.name: f for f in (HARDWARE, POW, UPTIME, ACCOUNTS, STAKE_EVENTS, JOBS, EXTERNAL_LISTINGS)}
REQUIRED_FEEDS = tuple(name for name, f in FEEDS.items() if f.required)

FRAUD_TYPES = (
    "virtualized_gpu",
    "spoofed_model",
    "duplicate_hardware",
    "failed_pow",
    "spoofed_uptime",
    "sybil",
    "double_listed",
    "wash_trading",
    "stake_manipulation",
)
TIERS = ("verified", "standard", "probation", "rejected")


def parse_hour(name: str) -> datetime | None:
    """``2024-08-14T07`` -> its start; None unless the name is a real UTC hour (``T99`` is not)."""
    return epochs.try_parse(name)


def split_name(filename: str) -> tuple[str, str] | None:
    """``pow.jsonl.gz`` -> ``("pow", "jsonl.gz")``; None when the name is not a contract file."""
    for ext in FORMATS:
        suffix = "." + ext
        if filename.endswith(suffix):
            return filename[: -len(suffix)], ext
    return None
