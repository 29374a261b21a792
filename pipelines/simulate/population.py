"""Build a simulated network: accounts and devices of every population, with ground truth.

Each population is one small builder that returns its accounts and devices as column dicts;
``build_network`` stitches them together and hands out opaque, shuffled ids so that an id never
reveals which population it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import polars as pl

from pipelines.catalogue import load_catalogue
from pipelines.simulate.draws import Draws
from pipelines.simulate.scenario import Scenario

T = TypeVar("T")

HOME_MODELS = {
    "rtx_3060": 0.11, "rtx_3070": 0.11, "rtx_3080": 0.11, "rtx_3080_ti": 0.08,
    "rtx_3090": 0.14, "rtx_4060": 0.08, "rtx_4070": 0.10, "rtx_4080": 0.08,
    "rtx_4090": 0.14, "rtx_5090": 0.05,
}  # fmt: skip
MAC_MODELS = {"apple_m1": 0.2, "apple_m2": 0.2, "apple_m2_pro": 0.2, "apple_m4": 0.25, "apple_m4_pro": 0.15}
LAB_MODELS = {"rtx_3090": 0.4, "rtx_4090": 0.4, "a40": 0.2}
SLICED_MODELS = {"rtx_4090": 0.6, "rtx_3090": 0.4}

RESIDENTIAL_ASNS = [(7922, "US"), (701, "US"), (3320, "DE"), (4134, "CN"), (9829, "IN"),
                    (28573, "BR"), (12389, "RU"), (4766, "KR"), (2856, "GB"), (3215, "FR"),
                    (6830, "NL"), (9121, "TR"), (17676, "JP"), (7545, "AU"), (577, "CA")]  # fmt: skip
HOSTING_ASNS = [(24940, "DE"), (16276, "FR"), (20473, "US"), (63949, "US"), (14061, "US")]
PROXY_ASNS = [(9009, "RO"), (60068, "GB"), (212238, "GB"), (136787, "SG"), (62240, "NL")]
UNIVERSITY_ASNS = [(1103, "NL"), (2200, "FR"), (680, "DE"), (786, "GB"), (11537, "US")]
FIRST = ["alex", "maria", "li", "sam", "noah", "emma", "omar", "yuki", "ivan", "lena", "raj",
         "chen", "ana", "tom", "sara", "wei", "jon", "mia", "ali", "eva", "kai", "zoe", "dan"]  # fmt: skip
LAST = ["smith", "garcia", "wang", "kim", "muller", "rossi", "silva", "novak", "tanaka",
        "kumar", "ivanova", "brown", "nguyen", "lopez", "fischer", "moreau", "costa"]  # fmt: skip
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "proton.me", "yahoo.com", "icloud.com", "gmx.de"]
BULK_DOMAINS = ["outlook.com", "hotmail.com", "gmail.com"]
HONEST_EXTRA_DOMAINS = ["hotmail.com", "yandex.ru", "mail.ru", "web.de", "naver.com", "qq.com", "aol.com",
                        "zoho.com", "tutanota.com", "fastmail.com"]  # fmt: skip
HANDLES = ["dark", "wolf", "pixel", "ghost", "neo", "crypto", "gamer", "lucky", "blue", "shadow", "nova", "turbo"]
VENDOR_DOMAINS = ["rambler.ru", "inbox.lv", "onet.pl", "gmx.com", "mailfence.com", "seznam.cz", "o2.pl", "bk.ru"]
ADJECTIVES = ["blue", "quick", "silent", "brave", "lucky", "cosmic", "golden", "wild", "iron", "swift", "calm", "red"]
NOUNS = ["falcon", "river", "tiger", "comet", "maple", "pixel", "storm", "otter", "cedar", "raven", "lotus", "fox"]
UTC_OFFSET_MIN = {"US": -300, "DE": 60, "CN": 480, "IN": 330, "BR": -180, "RU": 180, "KR": 540, "GB": 0,
                  "FR": 60, "NL": 60, "TR": 180, "JP": 540, "AU": 600, "CA": -300}  # fmt: skip
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CPU_CONSUMER = ["AMD Ryzen 9 7950X", "AMD Ryzen 7 5800X", "Intel Core i9-13900K",
                "Intel Core i7-12700K", "AMD Ryzen 5 5600X"]  # fmt: skip
CPU_SERVER = ["AMD EPYC 9554 64-Core", "Intel Xeon Platinum 8480+", "AMD EPYC 7763 64-Core"]


@dataclass
class Block:
    """Accounts and devices of one population, one dict per row (missing keys become null)."""

    accounts: list[dict] = field(default_factory=list)
    devices: list[dict] = field(default_factory=list)

    def add_account(self, **cols: object) -> int:
        self.accounts.append(cols)
        return len(self.accounts) - 1

    def add_device(self, **cols: object) -> None:
        self.devices.append(cols)


class Builder:
    """Random helpers shared by the population builders, all drawn from one seeded generator."""

    def __init__(self, scenario: Scenario, seed: int):
        self.scenario = scenario
        self.rng = np.random.default_rng([seed, 7])
        self.draws = Draws(self.rng)
        """The same stream's small draws, without numpy's cost per call."""
        self.integer = self.draws.integer
        """``int(rng.integers(low, high))``, drawn through ``draws`` (bound once: millions of calls)."""
        self.catalogue = {r["model_key"]: r for r in load_catalogue().iter_rows(named=True)}
        self._counter = 0
        self._cdfs: dict[tuple, tuple[list[str], np.ndarray]] = {}
        self.exchanges = [self.wallet() for _ in range(6)]
        self.hours = 1
        """Simulated hours (set by ``build_network``): late arrivals are drawn inside them."""
        self.exchange_p: np.ndarray | None = None
        if scenario.sybil.small_exchanges:  # Zipf-like popularity: the smallest fund tens of accounts
            self.exchanges += [self.wallet() for _ in range(scenario.sybil.small_exchanges)]
            weights = 1.0 / np.arange(1, len(self.exchanges) + 1)
            self.exchange_p = weights / weights.sum()
        self.wallet_links: list[tuple[str, str]] = []
        """(wallet, the wallet that funded it) for intermediate wallets that own no account."""

    # identifiers -------------------------------------------------------------------------
    def hex(self, n: int) -> str:
        return self.draws.bytes(n // 2 + 1).hex()[:n]

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``, uniformly: the draw ``rng.choice(options)`` makes (one bounded
        integer from the same stream, so networks stay identical) without converting the list to
        an array on every call, which was the simulator's largest cost per device."""
        return options[self.integer(0, len(options))]

    def gpu_uuid(self) -> str:
        h = self.hex(32)
        return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def chars(self, alphabet: str, size: int) -> str:
        """``size`` characters of ``alphabet``, uniformly: the draws ``rng.choice(list(alphabet),
        size)`` makes (one bounded integer each, so networks stay identical) without building
        an array of strings on every call (5x faster; a wallet per account)."""
        return "".join([alphabet[k] for k in self.draws.integers(0, len(alphabet), size)])

    def wallet(self) -> str:
        return self.chars(B58, 44)

    def serial(self) -> str:
        return str(int(self.rng.integers(1320000000000, 1329999999999)))

    def uniq(self) -> int:
        self._counter += 1
        return self._counter

    def choose(self, weights: dict[str, float]) -> str:
        """A key of ``weights`` drawn in proportion to its weight: the draw
        ``rng.choice(len(keys), p=p / p.sum())`` makes (one uniform against the same cumulative
        sums), with the sums computed once per weight table instead of on every call."""
        table = tuple(weights.items())
        if (cached := self._cdfs.get(table)) is None:
            p = np.array([w for _, w in table], dtype=float)
            cdf = (p / p.sum()).cumsum()
            cdf /= cdf[-1]
            cached = self._cdfs[table] = ([k for k, _ in table], cdf)
        keys, cdf = cached
        return keys[int(cdf.searchsorted(self.rng.random(), side="right"))]

    def ip_in(self, first_octets: list[int] | None = None) -> str:
        a = int(self.pick(first_octets)) if first_octets else self.integer(11, 223)
        b, c, d = self.draws.integers(0, 256, 3)
        return f"{a}.{b}.{c}.{max(d, 1)}"

    def subnet24(self) -> str:
        a = int(self.pick([45, 62, 91, 103, 146, 185, 193, 194, 212]))
        b, c = self.draws.integers(0, 256, 2)
        return f"{a}.{b}.{c}"

    def person_email(self, surname: str | None = None) -> str:
        first = str(self.pick(FIRST))
        last = surname or str(self.pick(LAST))
        if self.scenario.sybil.honest_mail_vendors:
            return self._varied_email(first, last)
        style = self.integer(0, 3)
        local = [f"{first}.{last}", f"{first}{last}{self.integer(1, 99)}", f"{first[0]}{last}"][style]
        return f"{local}{self.uniq()}@{self.pick(EMAIL_DOMAINS)}"

    def _varied_email(self, first: str, last: str) -> str:
        """Honest mailboxes of many providers and shapes (handles, birth years, underscores)."""
        year, n = self.integer(1965, 2006), self.integer(1, 999)
        handle = str(self.pick(HANDLES)) + str(self.pick(HANDLES))
        styles = [f"{first}.{last}", f"{first}{last}{n}", f"{first[0]}{last}", f"{first}_{last}{year % 100:02d}",
                  f"{handle}{year}", f"{last}.{first}{n}", f"{first}{year}"]  # fmt: skip
        local = self.pick(styles)
        domain = str(self.pick(EMAIL_DOMAINS + HONEST_EXTRA_DOMAINS))
        return f"{local}{self.uniq() if self.rng.random() < 0.5 else ''}@{domain}"

    def nightly_restart(self, country: str) -> dict:
        """Device fields of an honest machine that reboots around 03:00 local time (updates, cron)."""
        if self.scenario.sybil.honest_restart_share <= 0 or self.rng.random() >= self.scenario.sybil.honest_restart_share:
            return {}
        minute = (180 + self.integer(-30, 31) - UTC_OFFSET_MIN.get(country, 0)) % 1440
        return {"restart_minute": minute, "restart_jitter": self.integer(5, 30)}

    def created_at(self, days_before: tuple[int, int] = (5, 400)) -> float:
        """Seconds before the simulation start."""
        return float(self.rng.uniform(days_before[0] * 86400, days_before[1] * 86400))

    def funder(self, wallet: str) -> str:
        if self.rng.random() < 0.6:
            return wallet
        if self.exchange_p is None:
            return str(self.pick(self.exchanges))
        return str(self.rng.choice(self.exchanges, p=self.exchange_p))

    def apple_memory(self, model_key: str) -> int:
        """What an Apple chip reports as GPU memory: a share of one of its unified-memory sizes
        (base, 1.5x, 2x, 3x, 4x of the base, up to the chip's largest configuration)."""
        spec = self.catalogue[model_key]
        base, top = int(spec["vram_mb"]), int(spec["vram_max_mb"])
        sizes = [m for m in (base, base * 3 // 2, base * 2, base * 3, base * 4) if m <= top]
        lo, hi = self.scenario.apple_memory_share
        return int(int(self.pick(sizes)) * self.rng.uniform(lo, hi))

    # devices ------------------------------------------------------------------------------
    def efficiency(self, lo: float = 0.72, hi: float = 0.9) -> float:
        return float(self.rng.uniform(lo, hi))

    def habits(self) -> dict:
        """An honest owner's schedule: some switch the machine off for hours every day, some
        join during the run (new devices with no history)."""
        out: dict[str, object] = {}
        if self.rng.random() < self.scenario.daily_off_share:
            lo, hi = self.scenario.daily_off_hours
            out.update(off_start=self.integer(0, 24), off_len=self.integer(lo, hi + 1))
        if self.hours > 2 and self.rng.random() < self.scenario.new_home_share:
            out.update(first_hour=self.integer(1, self.hours - 1))
        return out

    def gpu_fields(self, model_key: str, *, host: str, index: int, kind: str) -> dict:
        spec = self.catalogue[model_key]
        apple = spec["vendor"] == "apple"
        dc = kind == "datacenter"
        return dict(
            claimed_model=model_key,
            true_model=model_key,
            vram_claimed_mb=int(spec["vram_mb"]),
            gpu_index=index,
            gpu_uuid=None if apple else self.gpu_uuid(),
            gpu_serial=self.serial() if dc and not apple else None,
            pci_bus_id=None if apple else f"00000000:{[0x01, 0x21, 0x41, 0x61, 0x81, 0xA1, 0xC1, 0xE1][index % 8]:02X}:00.0",
            host_fingerprint=host,
            os="macos" if apple else ("linux" if dc or self.rng.random() < 0.6 else "windows"),
            driver_version=None if apple else str(self.pick(["550.54.15", "555.42.06", "560.35.03"])),
            cuda_version=None if apple else str(self.pick(["12.4", "12.5", "12.6"])),
            virtualization_mode=None if apple else "NONE",
            mig_mode=None if apple else (False if dc else None),
            power_limit_w=None if apple else int(350 if not dc else 700),
            sm_clock_max_mhz=None if apple else int(self.pick([1755, 1980, 2520, 2610])),
        )


def _device(b: Builder, block: Block, acct: int, model: str, *, host: str, index: int,
            kind: str, ip: str, asn: int, country: str, cpu: str, population: str,
            fraud: list[str], cluster: str | None = None, **extra: object) -> None:  # fmt: skip
    fields = b.gpu_fields(model, host=host, index=index, kind=kind)
    fields.update(
        account=acct,
        population=population,
        fraud_types=fraud,
        cluster=cluster,
        ip=ip,
        asn=asn,
        country=country,
        cpu_model=cpu,
        cpu_cores=64 if kind == "datacenter" else int(b.pick([8, 12, 16, 24])),
        ram_gb=1024 if kind == "datacenter" else int(b.pick([16, 32, 64])),
        bw_down=float(b.rng.uniform(5000, 10000) if kind == "datacenter" else b.rng.uniform(50, 1000)),
        bw_up=float(b.rng.uniform(5000, 10000) if kind == "datacenter" else b.rng.uniform(10, 500)),
        worker_version=str(b.pick(["2.4.1", "2.5.0", "2.5.2"])),
        efficiency=b.efficiency(),
        physical_gpu=b.uniq(),
        first_hour=0,
        online_rate=1.0 - b.scenario.home_outage_rate,
        ping_loss=b.scenario.ping_loss,
        restart_minute=-1,
        restart_jitter=0,
        off_start=-1,
        off_len=0,
        true_vram_mb=None,
        spoof_uptime=False,
        cheat=None,
        fake=False,
        operator=None,
    )
    fields.update(extra)
    block.add_device(**fields)


def _home_like(b: Builder, count: int, population: str, eff: tuple[float, float]) -> Block:
    block = Block()
    while len(block.devices) < count:
        asn, country = b.pick(RESIDENTIAL_ASNS)
        wallet = b.wallet()
        acct = block.add_account(population=population, cluster=None, created_s=b.created_at(),
                                 email=b.person_email(), wallet=wallet, funder=b.funder(wallet),
                                 signup_ip=None, referrer=None)  # fmt: skip
        ip, host, cpu = b.ip_in(), b.hex(32), str(b.pick(CPU_CONSUMER))
        block.accounts[acct]["signup_ip"] = ip
        model, habits = b.choose(HOME_MODELS), b.habits()
        restart = b.nightly_restart(country)
        for k in range(1 if b.rng.random() < 0.7 else 2):
            _device(b, block, acct, model, host=host, index=k, kind="home", ip=ip, asn=asn,
                    country=country, cpu=cpu, population=population, fraud=[],
                    efficiency=b.efficiency(*eff), **habits, **restart)  # fmt: skip
    return block


def home(b: Builder, count: int) -> Block:
    return _home_like(b, count, "home", (0.72, 0.9))


def home_throttled(b: Builder, count: int) -> Block:
    """Honest cards running hot, power-limited or in small cases: much slower than spec."""
    return _home_like(b, count, "home_throttled", (0.3, 0.55))


def home_overclocked(b: Builder, count: int) -> Block:
    """Honest overclocked cards: up to ~12% above the spec-sheet figure."""
    return _home_like(b, count, "home_overclocked", (0.95, 1.12))


def mac_mini(b: Builder, count: int) -> Block:
    block = Block()
    for _ in range(count):
        asn, country = b.pick(RESIDENTIAL_ASNS)
        wallet = b.wallet()
        ip = b.ip_in()
        acct = block.add_account(population="mac_mini", cluster=None, created_s=b.created_at(),
                                 email=b.person_email(), wallet=wallet, funder=b.funder(wallet),
                                 signup_ip=ip, referrer=None)  # fmt: skip
        model = b.choose(MAC_MODELS)
        reported = b.apple_memory(model)
        _device(b, block, acct, model, host=b.hex(32), index=0, kind="mac", ip=ip, asn=asn,
                country=country, cpu="Apple", population="mac_mini", fraud=[],
                vram_claimed_mb=reported, true_vram_mb=reported, **b.habits())  # fmt: skip
    return block


def datacenter(b: Builder, count: int) -> Block:
    """Big honest operators: one account, hundreds of GPUs, 8 per host, one /24, one ASN."""
    block = Block()
    while len(block.devices) < count:
        left = count - len(block.devices)
        lo, hi = b.scenario.datacenter_operator_gpus
        size = min(left, b.integer(lo, hi + 1))
        asn, country = b.pick(HOSTING_ASNS)
        subnet = b.subnet24()
        wallet = b.wallet()
        op = f"dc-{b.uniq()}"
        acct = block.add_account(population="datacenter", cluster=op, created_s=b.created_at(),
                                 email=f"gpu-ops{b.uniq()}@{op}.example", wallet=wallet,
                                 funder=wallet, signup_ip=f"{subnet}.2", referrer=None)  # fmt: skip
        model = b.choose(b.scenario.datacenter_models)
        cpu = str(b.pick(CPU_SERVER))
        hosts = (size + 7) // 8
        late_from, late_hour = hosts, 0  # an operator adding a rack mid-run: an honest wave
        if b.hours > 2 and hosts >= 4 and b.rng.random() < b.scenario.late_rack_share:
            late_from = hosts - b.integer(2, max(3, hosts // 3) + 1)
            late_hour = b.integer(1, b.hours - 1)
        for h in range(hosts):
            host, ip = b.hex(32), f"{subnet}.{10 + h % 240}"
            for k in range(min(8, size - 8 * h)):
                _device(b, block, acct, model, host=host, index=k, kind="datacenter", ip=ip,
                        asn=asn, country=country, cpu=cpu, population="datacenter", fraud=[],
                        operator=op, efficiency=b.efficiency(0.8, 0.92),
                        first_hour=late_hour if h >= late_from else 0)  # fmt: skip
    return block


def datacenter_sites(b: Builder, count: int) -> Block:
    """A company with racks at several sites, one account per site: one treasury wallet pays every
    site's stakes, one server build, mailboxes ``ops-<site>@`` at the company's own domain; each
    site its own hosting network and /24 (a sybil look-alike: a funder, a build and a mailbox shape)."""
    block = Block()
    lo, hi = b.scenario.site_gpus
    while len(block.devices) < count:
        company = f"co-{b.uniq()}"
        treasury = b.wallet()
        model = b.choose(b.scenario.datacenter_models)
        cpu = str(b.pick(CPU_SERVER))
        for site in range(b.integer(2, 6)):
            left = count - len(block.devices)
            if left <= 0:
                break
            size = min(left, b.integer(lo, hi + 1))
            size = left if left - size < lo else size  # no site smaller than a fleet is left over
            asn, country = b.pick(HOSTING_ASNS)
            subnet = b.subnet24()
            acct = block.add_account(population="datacenter_sites", cluster=company, created_s=b.created_at(),
                                     email=f"ops-{country.lower()}{site}@{company}.example", wallet=b.wallet(),
                                     funder=treasury, signup_ip=f"{subnet}.2", referrer=None)  # fmt: skip
            for h in range((size + 7) // 8):
                host, ip = b.hex(32), f"{subnet}.{10 + h % 240}"
                for k in range(min(8, size - 8 * h)):
                    _device(b, block, acct, model, host=host, index=k, kind="datacenter", ip=ip,
                            asn=asn, country=country, cpu=cpu, population="datacenter_sites", fraud=[],
                            operator=company, efficiency=b.efficiency(0.8, 0.92))  # fmt: skip
    return block


def shared_nat_lab(b: Builder, count: int) -> Block:
    """A university lab: many independent accounts behind one NAT address."""
    block = Block()
    while len(block.devices) < count:
        asn, country = b.pick(UNIVERSITY_ASNS)
        ip = b.ip_in()
        lo, hi = b.scenario.lab_accounts
        for _ in range(b.integer(lo, hi + 1)):
            if len(block.devices) >= count:
                break
            wallet = b.wallet()
            acct = block.add_account(population="shared_nat_lab", cluster=None,
                                     created_s=b.created_at(), email=b.person_email(),
                                     wallet=wallet, funder=b.funder(wallet), signup_ip=ip,
                                     referrer=None)  # fmt: skip
            _device(b, block, acct, b.choose(LAB_MODELS), host=b.hex(32), index=0, kind="lab",
                    ip=ip, asn=asn, country=country, cpu=str(b.pick(CPU_CONSUMER)),
                    population="shared_nat_lab", fraud=[], ping_loss=b.scenario.nat_ping_loss,
                    **b.habits())  # fmt: skip
    return block


def shared_nat_family(b: Builder, count: int) -> Block:
    """Families and flatmates: 2-4 accounts on one home connection, often one referring another."""
    block = Block()
    while len(block.devices) < count:
        asn, country = b.pick(RESIDENTIAL_ASNS)
        ip, surname = b.ip_in(), str(b.pick(LAST))
        first = None
        family_wallet = None
        if b.scenario.sybil.family_shared_funder > 0 and b.rng.random() < b.scenario.sybil.family_shared_funder:
            family_wallet = b.wallet()  # one parent's wallet funds everyone's stake
            b.wallet_links.append((family_wallet, b.funder(family_wallet)))
        for _ in range(b.integer(2, 5)):
            if len(block.devices) >= count:
                break
            wallet = b.wallet()
            acct = block.add_account(population="shared_nat_family", cluster=None,
                                     created_s=b.created_at(), email=b.person_email(surname),
                                     wallet=wallet, funder=family_wallet or b.funder(wallet), signup_ip=ip,
                                     referrer=first)  # fmt: skip
            first = acct if first is None else first
            _device(b, block, acct, b.choose(HOME_MODELS), host=b.hex(32), index=0, kind="home",
                    ip=ip, asn=asn, country=country, cpu=str(b.pick(CPU_CONSUMER)),
                    population="shared_nat_family", fraud=[], ping_loss=b.scenario.nat_ping_loss,
                    **b.habits())  # fmt: skip
    return block


def _virtualized(b: Builder, count: int, population: str, spoofed: bool) -> Block:
    """One physical card split into k slices, each registered as its own GPU."""
    block = Block()
    fraud = ["virtualized_gpu"] if spoofed else ["virtualized_gpu", "duplicate_hardware"]
    while len(block.devices) < count:
        left = count - len(block.devices)
        lo, hi = b.scenario.slices_per_card
        k = min(left, b.integer(lo, hi + 1))
        if left - k == 1:  # never leave a lone "slice": it would be an ordinary card
            k += 1
        asn, country = b.pick(RESIDENTIAL_ASNS)
        ip, host, model = b.ip_in(), b.hex(32), b.choose(SLICED_MODELS)
        card = b.uniq()
        uuid, cluster = b.gpu_uuid(), f"card-{card}"
        accounts = []
        for _ in range(b.integer(1, 4) if spoofed else 1):
            wallet = b.wallet()
            accounts.append(block.add_account(population=population, cluster=cluster,
                                              created_s=b.created_at((1, 60)),
                                              email=b.person_email(), wallet=wallet,
                                              funder=b.funder(wallet), signup_ip=ip,
                                              referrer=None))  # fmt: skip
        eff = b.efficiency()
        cpu = str(b.pick(CPU_CONSUMER))
        for s in range(k):
            extra: dict[str, object] = dict(physical_gpu=card, efficiency=eff, slices=k)
            if spoofed:
                extra.update(gpu_uuid=b.gpu_uuid(), host_fingerprint=b.hex(32),
                             pci_bus_id=f"00000000:{(s * 16 + 1) % 256:02X}:00.0")  # fmt: skip
            else:
                extra.update(gpu_uuid=uuid, pci_bus_id="00000000:01:00.0")
            _device(b, block, accounts[s % len(accounts)], model, host=host, index=0 if not spoofed else s,
                    kind="home", ip=ip, asn=asn, country=country, cpu=cpu, population=population,
                    fraud=fraud, cluster=cluster, **extra)  # fmt: skip
    return block


def virtualized_naive(b: Builder, count: int) -> Block:
    return _virtualized(b, count, "virtualized_naive", spoofed=False)


def virtualized_spoofed(b: Builder, count: int) -> Block:
    return _virtualized(b, count, "virtualized_spoofed", spoofed=True)


def _simple_attack(b: Builder, count: int, population: str, fraud: list[str],
                   per_account: tuple[int, int], **extra: object) -> Block:  # fmt: skip
    block = Block()
    while len(block.devices) < count:
        asn, country = b.pick(RESIDENTIAL_ASNS)
        wallet = b.wallet()
        ip, host = b.ip_in(), b.hex(32)
        acct = block.add_account(population=population, cluster=None, created_s=b.created_at((1, 90)),
                                 email=b.person_email(), wallet=wallet, funder=b.funder(wallet),
                                 signup_ip=ip, referrer=None)  # fmt: skip
        model = extra.pop("model", None) if "model" in extra else None
        for k in range(b.integer(per_account[0], per_account[1] + 1)):
            if len(block.devices) >= count:
                break
            _device(b, block, acct, model or b.choose(HOME_MODELS), host=host, index=k,
                    kind="home", ip=ip, asn=asn, country=country,
                    cpu=str(b.pick(CPU_CONSUMER)), population=population, fraud=fraud,
                    **extra)  # fmt: skip
            if model:
                extra["model"] = model
    return block


def spoofed_model(b: Builder, count: int) -> Block:
    """Cheap cards (a T4) claiming to be an A100 80GB."""
    block = _simple_attack(b, count, "spoofed_model", ["spoofed_model"], (1, 4))
    claimed = b.scenario.spoofed_claimed_model
    for dev in block.devices:
        dev.update(true_model=str(b.pick(list(b.scenario.spoofed_true_models))), claimed_model=claimed,
                   vram_claimed_mb=int(b.catalogue[claimed]["vram_mb"]))  # fmt: skip
    return block


def pow_cheat_samples(b: Builder, count: int) -> Block:
    return _simple_attack(b, count, "pow_cheat_samples", ["failed_pow"], (1, 3), cheat="samples")


def pow_cheat_timing(b: Builder, count: int) -> Block:
    return _simple_attack(b, count, "pow_cheat_timing", ["failed_pow"], (1, 3), cheat="timing")


def uptime_spoofer(b: Builder, count: int) -> Block:
    """Devices that keep sending heartbeats while the machine is mostly off."""
    return _simple_attack(b, count, "uptime_spoofer", ["spoofed_uptime", "failed_pow"], (1, 2),
                          spoof_uptime=True, online_rate=b.scenario.spoofer_online_rate)  # fmt: skip


def double_lister(b: Builder, count: int) -> Block:
    return _simple_attack(b, count, "double_lister", ["double_listed"], (1, 2))


def _sybil(b: Builder, count: int, population: str, accounts_per_ring: tuple[int, int],
           jitter: int) -> Block:  # fmt: skip
    """One operator posing as many small owners: bulk emails, one funder, proxy IPs."""
    block = Block()
    variants = b.scenario.sybil.variants
    while len(block.devices) < count:
        variant = b.choose(variants) if len(variants) > 1 else next(iter(variants))
        if variant != "classic":
            _recipe_ring(b, block, count, population, accounts_per_ring, jitter, variant)
            continue
        ring = f"ring-{b.uniq()}"
        funder = b.wallet()
        middles = [b.wallet() for _ in range(3)]
        b.wallet_links += [(m, funder) for m in middles]
        asn, country = b.pick(PROXY_ASNS)
        restart = b.integer(0, 60)
        restart_hour = b.integer(0, 24)
        domain = str(b.pick(BULK_DOMAINS))
        stem = str(b.pick(FIRST))
        signup_base = b.created_at((3, 20))
        n_acc = b.integer(accounts_per_ring[0], accounts_per_ring[1] + 1)
        model = b.choose(HOME_MODELS)
        cpu = str(b.pick(["Intel Xeon E5-2680 v4", "Intel Xeon E5-2690 v3", "AMD EPYC 7302", "Intel Xeon Gold 6138"]))
        ram, cores = int(b.pick([32, 48, 64])), int(b.pick([8, 14, 16]))
        referrer = None
        a = 0
        # a ring takes the rest when what would be left could not make a ring of its own
        while len(block.devices) < count and (a < n_acc or count - len(block.devices) < 2 * accounts_per_ring[0]):
            if domain == "gmail.com" and a % 2:
                local = ".".join(stem) + f"+{a}"
            else:
                local = f"{stem}{b.integer(1000, 9999)}{b.hex(3)}"
            ip = f"{b.subnet24()}.{b.integer(2, 250)}"
            wallet = b.wallet()
            acct = block.add_account(population=population, cluster=ring,
                                     created_s=signup_base - float(b.rng.uniform(0, 7200)),
                                     email=f"{local}@{domain}", wallet=wallet,
                                     funder=middles[a % 3] if a % 2 else funder, signup_ip=ip,
                                     referrer=referrer)  # fmt: skip
            referrer = acct if referrer is None and b.rng.random() < 0.5 else referrer
            host = b.hex(32)
            for k in range(1 if b.rng.random() < 0.8 else 2):
                _device(b, block, acct, model, host=host, index=k, kind="home", ip=ip, asn=asn,
                        country=country, cpu=cpu, population=population,
                        fraud=["sybil"], cluster=ring, restart_minute=restart_hour * 60 + restart,
                        restart_jitter=jitter, ram_gb=ram, cpu_cores=cores, worker_version="2.5.2")  # fmt: skip
            a += 1
    return block


def ring_mailbox_maker(b: Builder, variant: str):
    """A function giving the ring's next mailbox: one vendor, one shape, per ring."""
    if variant == "vendor_chain":  # random strings of one length from one bulk vendor
        domain, length = str(b.pick(VENDOR_DOMAINS)), b.integer(8, 15)
        return lambda: b.chars("abcdefghijklmnopqrstuvwxyz0123456789", length) + "@" + domain
    if variant == "word_split":  # adjective + noun + digits, one separator
        domain, sep, digits = str(b.pick(EMAIL_DOMAINS)), str(b.pick(["", ".", "_"])), b.integer(2, 5)
        return lambda: (f"{b.pick(ADJECTIVES)}{sep}{b.pick(NOUNS)}"
                        f"{b.integer(10 ** (digits - 1), 10 ** digits)}@{domain}")  # fmt: skip
    # human_template: names that look like people's, on mainstream providers
    domains = list(b.rng.choice(EMAIL_DOMAINS, size=2, replace=False))
    return lambda: (f"{b.pick(FIRST)}.{b.pick(LAST)}{b.integer(1970, 2005)}"
                    f"@{b.pick(domains)}")  # fmt: skip


def ring_funders(b: Builder, variant: str, n_acc: int) -> list[str]:
    """The wallet that funds each of the ring's accounts; chains of intermediates go to ``wallet_links``."""
    p = b.scenario.sybil
    boss = b.wallet()
    if variant == "vendor_chain":  # 1-3 chains boss -> m1 -> ... -> md, accounts at the chains' ends
        ends = []
        for _ in range(b.integer(1, 4)):
            up = boss
            for _ in range(b.integer(p.funding_depth[0], p.funding_depth[1] + 1)):
                mid = b.wallet()
                b.wallet_links.append((mid, up))
                up = mid
            ends.append(up)
        return [ends[a % len(ends)] for a in range(n_acc)]
    # word_split / human_template: many small funders (3-8 accounts each)
    lo, hi = p.accounts_per_funder
    source = boss
    if variant == "word_split":  # boss -> one intermediate -> the small funders
        source = b.wallet()
        b.wallet_links.append((source, boss))
    funders: list[str] = []
    while len(funders) < n_acc:
        f = b.wallet()
        # human_template: each funder withdrawn from an exchange, so no common wallet above them
        b.wallet_links.append((f, str(b.pick(b.exchanges)) if variant == "human_template" else source))
        funders += [f] * b.integer(lo, hi + 1)
    return funders[:n_acc]


def _recipe_ring(b: Builder, block: Block, count: int, population: str, accounts_per_ring: tuple[int, int],
                 jitter: int, variant: str) -> None:  # fmt: skip
    """One ring made with a named recipe: its own mailbox vendor and shape, funding path, restart
    jitter, sign-up bursts, one VM template, proxies over many /24s of a few ASNs, referrals."""
    p = b.scenario.sybil
    ring = f"ring-{variant}-{b.uniq()}"
    n_acc = b.integer(accounts_per_ring[0], accounts_per_ring[1] + 1)
    mailbox = ring_mailbox_maker(b, variant)
    funders = ring_funders(b, variant, n_acc + 2 * accounts_per_ring[0])
    pool = PROXY_ASNS + HOSTING_ASNS
    asns = [pool[int(i)] for i in b.rng.choice(len(pool), size=b.integer(p.proxy_asns[0], p.proxy_asns[1] + 1), replace=False)]
    restart = b.integer(0, 1440)
    ring_jitter = max(jitter, b.integer(p.restart_jitter_minutes[0], p.restart_jitter_minutes[1] + 1))
    bursts = [b.created_at((3, 30)) for _ in range(b.integer(1, 5))]
    burst_s = 60.0 * b.integer(p.signup_burst_minutes[0], p.signup_burst_minutes[1] + 1)
    referral = str(b.pick(["none", "star", "chain"]))
    model = b.choose(HOME_MODELS)
    cpu = str(b.pick(CPU_CONSUMER + CPU_SERVER + ["Intel Xeon E5-2680 v4", "AMD EPYC 7302"]))
    ram, cores, worker = (
        int(b.pick([16, 32, 48, 64])),
        int(b.pick([4, 8, 12, 16])),
        str(b.pick(["2.4.1", "2.5.0", "2.5.2"])),
    )
    first = previous = None
    a = 0
    while len(block.devices) < count and (a < n_acc or count - len(block.devices) < 2 * accounts_per_ring[0]):
        asn, country = b.pick(asns)
        ip = f"{b.subnet24()}.{b.integer(2, 250)}"
        referrer = {"none": None, "star": first, "chain": previous}[referral]
        acct = block.add_account(population=population, cluster=ring,
                                 created_s=b.pick(bursts) - float(b.rng.uniform(0, burst_s)),
                                 email=mailbox(), wallet=b.wallet(), funder=funders[min(a, len(funders) - 1)],
                                 signup_ip=ip, referrer=referrer)  # fmt: skip
        first = acct if first is None else first
        previous = acct
        host = b.hex(32)  # a cloned VM template gets a fresh machine-id: hosts differ, the template does not
        for k in range(1 if b.rng.random() < 0.8 else 2):
            _device(b, block, acct, model, host=host, index=k, kind="home", ip=ip, asn=asn, country=country,
                    cpu=cpu, population=population, fraud=["sybil"], cluster=ring, restart_minute=restart,
                    restart_jitter=ring_jitter, ram_gb=ram, cpu_cores=cores, worker_version=worker)  # fmt: skip
        a += 1


def ring_variant(cluster: str) -> str:
    """The recipe of a simulated ring from its truth cluster id (``ring-<variant>-<n>``)."""
    parts = cluster.split("-")
    return parts[1] if len(parts) == 3 else "classic"


def sybil_ring(b: Builder, count: int) -> Block:
    return _sybil(b, count, "sybil_ring", b.scenario.sybil_accounts_per_ring, 0)


def sybil_ring_jitter(b: Builder, count: int) -> Block:
    return _sybil(b, count, "sybil_ring_jitter", b.scenario.sybil_accounts_per_ring, 25)


def sybil_ring_small(b: Builder, count: int) -> Block:
    return _sybil(b, count, "sybil_ring_small", b.scenario.small_ring_accounts, 10)


def wash_trader(b: Builder, count: int) -> Block:
    """Owners renting their own devices from client accounts they also control."""
    block = _simple_attack(b, count, "wash_trader", ["wash_trading"], (1, 3))
    for acct, owner in enumerate(list(block.accounts)):
        owner["cluster"] = f"wash-{b.uniq()}"
        block.add_account(population="wash_trader", cluster=owner["cluster"],
                          created_s=b.created_at((1, 30)), email=b.person_email(), wallet=b.wallet(),
                          funder=owner["funder"], signup_ip=owner["signup_ip"], referrer=acct,
                          role="client")  # fmt: skip
    for dev in block.devices:
        dev["cluster"] = block.accounts[dev["account"]]["cluster"]
    return block


def clients(b: Builder, count: int) -> Block:
    """Honest renters: accounts that hire GPUs and own none."""
    block = Block()
    for _ in range(count):
        wallet = b.wallet()
        block.add_account(population="client", cluster=None, created_s=b.created_at(),
                          email=b.person_email(), wallet=wallet, funder=b.funder(wallet),
                          signup_ip=b.ip_in(), referrer=None, role="client")  # fmt: skip
    return block


def burst(b: Builder, count: int) -> Block:
    """A sudden wave of fake devices (no GPU behind them) claiming one popular model."""
    block = Block()
    hour = b.scenario.burst_hour
    asn, country = b.pick(PROXY_ASNS)
    while len(block.devices) < count:
        wallet = b.wallet()
        subnet = b.subnet24()
        acct = block.add_account(population="burst", cluster="burst", created_s=-hour * 3600.0,
                                 email=f"{b.hex(10)}@{b.pick(BULK_DOMAINS)}", wallet=wallet,
                                 funder=b.funder(wallet), signup_ip=f"{subnet}.9", referrer=None)  # fmt: skip
        for k in range(b.integer(20, 80)):
            if len(block.devices) >= count:
                break
            _device(b, block, acct, b.scenario.burst_model, host=b.hex(32), index=k % 8,
                    kind="home", ip=f"{subnet}.{10 + k % 200}", asn=asn, country=country,
                    cpu=str(b.pick(CPU_CONSUMER)), population="burst",
                    fraud=["failed_pow", "burst"], cluster="burst", fake=True, first_hour=hour)  # fmt: skip
    return block


BUILDERS = {
    f.__name__: f
    for f in (
        home,
        home_throttled,
        home_overclocked,
        mac_mini,
        datacenter,
        datacenter_sites,
        shared_nat_lab,
        shared_nat_family,
        virtualized_naive,
        virtualized_spoofed,
        spoofed_model,
        pow_cheat_samples,
        pow_cheat_timing,
        uptime_spoofer,
        sybil_ring,
        sybil_ring_jitter,
        sybil_ring_small,
        wash_trader,
        double_lister,
        burst,
    )  # fmt: skip
}


@dataclass
class Network:
    """The simulated network: one row per account and per device, ground truth included."""

    accounts: pl.DataFrame
    devices: pl.DataFrame
    wallet_links: pl.DataFrame
    """Intermediate wallets and their funders (they delegate to the shared pool once)."""


def build_network(scenario: Scenario, n_devices: int, seed: int, hours: int) -> Network:
    """Draw every population's accounts and devices, then assign opaque shuffled ids."""
    b = Builder(scenario, seed)
    b.hours = hours
    shares = scenario.populations
    counts = {k: int(round(v * n_devices)) for k, v in shares.items()}
    biggest = max(counts, key=counts.get)  # type: ignore[arg-type]
    counts[biggest] += n_devices - sum(counts.values())
    acc_frames, dev_frames = [], []
    acc_offset = 0
    blocks = [BUILDERS[name](b, count) for name, count in counts.items() if count > 0]
    blocks.append(clients(b, max(10, n_devices // 100)))
    for block in blocks:
        acc = pl.DataFrame(block.accounts, infer_schema_length=None)
        dev = pl.DataFrame(block.devices, infer_schema_length=None) if block.devices else None
        acc = acc.with_columns(
            pl.int_range(pl.len()).alias("acc_local"),
            pl.col("referrer").cast(pl.Int64) + acc_offset,
        )
        acc_frames.append(acc.with_columns((pl.col("acc_local") + acc_offset).alias("account")))
        if dev is not None:
            dev_frames.append(dev.with_columns(pl.col("account").cast(pl.Int64) + acc_offset))
        acc_offset += acc.height
    accounts = pl.concat(acc_frames, how="diagonal_relaxed").drop("acc_local").with_columns(pl.col("cluster").cast(pl.String))
    devices = pl.concat(dev_frames, how="diagonal_relaxed").with_columns(pl.col("cluster").cast(pl.String))
    burst_hour = min(max(scenario.burst_hour, 0), max(hours - 1, 0))
    devices = devices.with_columns(pl.when(pl.col("fake")).then(burst_hour).otherwise(pl.col("first_hour")).alias("first_hour"))
    # opaque ids: shuffle so that id order says nothing about population
    acc_perm = b.rng.permutation(accounts.height)
    dev_perm = b.rng.permutation(devices.height)
    tag = b.hex(4)
    accounts = accounts.with_columns(
        (f"acc_{tag}" + pl.Series(acc_perm).cast(pl.String).str.zfill(6)).alias("account_id"),
        pl.col("role").fill_null("owner") if "role" in accounts.columns else pl.lit("owner").alias("role"),
    )
    ids = accounts.select("account", "account_id")
    accounts = accounts.join(
        ids.rename({"account": "referrer", "account_id": "referrer_account_id"}), on="referrer", how="left"
    ).sort("account")
    devices = devices.with_columns(
        (f"dev_{tag}" + pl.Series(dev_perm).cast(pl.String).str.zfill(7)).alias("device_id"),
        pl.col("slices").fill_null(1) if "slices" in devices.columns else pl.lit(1).alias("slices"),
    ).join(ids, on="account", how="left", maintain_order="left")
    links = pl.DataFrame(b.wallet_links, schema={"wallet": pl.String, "funder": pl.String}, orient="row")
    accounts, devices = _stake_flashers(accounts, devices, scenario.stake_flash_share, seed)
    return Network(accounts=accounts, devices=devices, wallet_links=links)


def _stake_flashers(accounts: pl.DataFrame, devices: pl.DataFrame, share: tuple[float, float],
                    seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:  # fmt: skip
    """Make a share of home owners stake flashers (population ``stake_flasher``, fraud
    ``stake_manipulation``): owners of real, honestly run cards who also game stake positions.
    Drawn from a generator of their own, so the rest of the network is the same with or without."""
    rng = np.random.default_rng([seed, 41])
    rate = float(rng.uniform(*share)) if share[1] > 0 else 0.0
    homes = accounts.filter((pl.col("population") == "home") & (pl.col("role") == "owner"))["account"].to_numpy()
    picked = pl.Series(homes[rng.random(homes.size) < rate], dtype=pl.Int64)
    flasher = pl.col("account").is_in(picked)
    accounts = accounts.with_columns(pl.when(flasher).then(pl.lit("stake_flasher")).otherwise("population").alias("population"))
    devices = devices.with_columns(
        pl.when(flasher).then(pl.lit("stake_flasher")).otherwise("population").alias("population"),
        pl.when(flasher).then(pl.lit(["stake_manipulation"])).otherwise("fraud_types").alias("fraud_types"),
    )
    return accounts, devices
