"""One simulated hour: what every device does, turned into the contract's feeds.

Everything is vectorised over devices with numpy; the only per-item Python work is computing
honest proof-of-work answers, which is the real cost of the challenge (``pow_math``).
Each hour draws from its own generator (``[seed, hour]``), so hours can be produced in any
order and the same seed always gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from pipelines import epoch as epochs
from pipelines.catalogue import load_catalogue
from pipelines.contract import BASE_UNITS_PER_IO
from pipelines.pow_math import sample_entries
from pipelines.simulate.population import Network
from pipelines.simulate.scenario import Scenario

RESTART_MINUTES = 10
OTHER_NETWORKS = ("akash", "render", "vast")


@dataclass
class DeviceArrays:
    """The network's devices as numpy arrays, prepared once for all hours."""

    n: int
    device_id: np.ndarray
    physical_gpu: np.ndarray
    claimed_spec: np.ndarray
    true_spec: np.ndarray
    true_vram_mb: np.ndarray
    vram_claimed_mb: np.ndarray
    efficiency: np.ndarray
    first_hour: np.ndarray
    online_rate: np.ndarray
    ping_loss: np.ndarray
    restart_minute: np.ndarray
    restart_jitter: np.ndarray
    spoof_uptime: np.ndarray
    cheat_samples: np.ndarray
    cheat_timing: np.ndarray
    fake: np.ndarray
    operator_code: np.ndarray
    hb_phase: np.ndarray
    off_start: np.ndarray
    """Hour of day an owner switches the machine off (-1: never), for ``off_len`` hours."""
    off_len: np.ndarray
    ip_code: np.ndarray
    """Home connection of each device (-1 for datacenter hosts): ISP outages hit a connection."""
    wash: np.ndarray
    double_list: np.ndarray
    cross_list: np.ndarray
    hardware: pl.DataFrame


def prepare(net: Network, seed: int, heartbeat_minutes: int = 10) -> DeviceArrays:
    cat = load_catalogue().select("model_key", "name", "fp16_tensor_tflops", "vram_mb")
    d = net.devices
    spec = dict(zip(cat["model_key"], cat["fp16_tensor_tflops"]))
    vram = dict(zip(cat["model_key"], cat["vram_mb"]))
    name = dict(zip(cat["model_key"], cat["name"]))
    rng = np.random.default_rng([seed, 9])
    n = d.height
    pop = d["population"].to_numpy()
    # a stake flasher's machine is a home machine run honestly (only its owner's stakes are games)
    honest_home = np.isin(pop, ["home", "home_throttled", "home_overclocked", "shared_nat_family", "stake_flasher"])
    cheat = d["cheat"].to_numpy()
    op = d["operator"].fill_null("").to_numpy()
    _, op_code = np.unique(op, return_inverse=True)
    op_code = np.where(op == "", -1, op_code)
    hardware = d.select(
        "device_id",
        "account_id",
        "host_fingerprint",
        "ip",
        "asn",
        "country",
        "os",
        "worker_version",
        "gpu_index",
        pl.col("claimed_model").replace_strict(name).alias("gpu_model"),
        "gpu_uuid",
        "gpu_serial",
        "pci_bus_id",
        pl.col("vram_claimed_mb").alias("vram_total_mb"),
        "driver_version",
        "cuda_version",
        "virtualization_mode",
        "mig_mode",
        "power_limit_w",
        "sm_clock_max_mhz",
        "cpu_model",
        "cpu_cores",
        "ram_gb",
        pl.col("bw_down").round(1).alias("bandwidth_down_mbps"),
        pl.col("bw_up").round(1).alias("bandwidth_up_mbps"),
    )
    return DeviceArrays(
        n=n,
        device_id=d["device_id"].to_numpy(),
        physical_gpu=d["physical_gpu"].to_numpy(),
        claimed_spec=np.array([spec[m] for m in d["claimed_model"]]),
        true_spec=np.array([spec[m] for m in d["true_model"]]),
        true_vram_mb=np.where(
            d["true_vram_mb"].is_null().to_numpy(),
            np.array([vram[m] for m in d["true_model"]]),
            d["true_vram_mb"].fill_null(0).to_numpy(),
        ),
        vram_claimed_mb=d["vram_claimed_mb"].to_numpy(),
        efficiency=d["efficiency"].to_numpy(),
        first_hour=d["first_hour"].to_numpy(),
        online_rate=d["online_rate"].to_numpy(),
        ping_loss=d["ping_loss"].to_numpy(),
        restart_minute=d["restart_minute"].to_numpy(),
        restart_jitter=d["restart_jitter"].to_numpy(),
        spoof_uptime=d["spoof_uptime"].to_numpy(),
        cheat_samples=cheat == "samples",
        cheat_timing=cheat == "timing",
        fake=d["fake"].to_numpy(),
        operator_code=op_code,
        hb_phase=rng.integers(0, heartbeat_minutes, n),
        off_start=d["off_start"].to_numpy(),
        off_len=d["off_len"].to_numpy(),
        ip_code=np.where(op_code >= 0, -1, np.unique(d["ip"].to_numpy(), return_inverse=True)[1]),
        wash=(pop == "wash_trader"),
        double_list=(pop == "double_lister"),
        cross_list=honest_home & (rng.random(n) < 0.03),
        hardware=hardware,
    )


def _down_minutes(dev: DeviceArrays, seed: int, hour_index: int, start: datetime) -> np.ndarray:
    """Per device, the [from, to) minute of this hour its restart script takes it down (or -1)."""
    day = (start + timedelta(hours=hour_index)).toordinal()
    hour_of_day = (start + timedelta(hours=hour_index)).hour
    jitter = np.random.default_rng([seed, 13, day]).integers(-1000, 1001, dev.n)
    minute = dev.restart_minute + (jitter * dev.restart_jitter) // 1000
    minute = np.where(dev.restart_minute < 0, -10_000, minute % 1440)
    return minute - hour_of_day * 60


def _is_up(online: np.ndarray, down_from: np.ndarray, minute: np.ndarray) -> np.ndarray:
    return online & ~((minute >= down_from) & (minute < down_from + RESTART_MINUTES))


def _stamp(base: datetime, seconds: np.ndarray) -> pl.Series:
    ms = (np.asarray(seconds, dtype=float) * 1000).astype(np.int64)
    return pl.Series(np.datetime64(base, "ms") + ms.astype("timedelta64[ms]"))


def simulate_hour(
    net: Network,
    dev: DeviceArrays,
    scenario: Scenario,
    seed: int,
    hour_index: int,
    plan: dict[str, str] | None = None,
) -> dict[str, pl.DataFrame]:
    """All feeds for one hour. ``plan`` maps device_id -> group: a group is challenged together."""
    start = epochs.parse(scenario.start)
    base = start + timedelta(hours=hour_index)
    rng = np.random.default_rng([seed, 11, hour_index])
    n = dev.n
    present = dev.first_hour <= hour_index

    online = rng.random(n) < dev.online_rate
    online &= ~_in_window(dev.operator_code, seed, 19, hour_index, scenario.maintenance_rate, scenario.maintenance_hours)
    online &= ~_in_window(dev.ip_code, seed, 17, hour_index, scenario.outage_rate, scenario.outage_hours)
    hour_of_day = base.hour
    online &= ~((dev.off_start >= 0) & ((hour_of_day - dev.off_start) % 24 < dev.off_len))
    online &= present
    # a consumer card running hot this hour (datacenter cooling keeps theirs steady)
    lo, hi = scenario.throttle_depth
    hot = (dev.operator_code < 0) & (rng.random(n) < scenario.throttle_rate)
    hour_speed = np.where(hot, rng.uniform(lo, hi, n), 1.0)
    down_from = _down_minutes(dev, seed, hour_index, start)
    claims_online = present & (online | dev.spoof_uptime)

    # a worker whose GPU process hangs for hours (pings and heartbeats go on, challenges time out), and uptime
    # spoofers whose address is held by a box that answers pings too: each from generators of their own
    hung = _in_window(np.arange(n), seed, 31, hour_index, scenario.hung_worker_rate, scenario.hung_worker_hours)
    proxy = dev.spoof_uptime & (np.random.default_rng([seed, 29]).random(n) < scenario.spoofer_proxy_share)
    uptime = _uptime(dev, rng, base, online, claims_online, present, down_from, scenario, proxy)
    hardware = _hardware(dev, rng, base, claims_online)
    challenged = present if scenario.challenge_offline else claims_online
    pow_ = _pow(dev, scenario, rng, base, online & ~hung, challenged, down_from, plan, hour_speed)
    feeds = {"hardware": hardware, "pow": pow_, "uptime": uptime}
    feeds.update(_accounts(net, start, hour_index))
    feeds.update(_stakes(net, rng, base, hour_index, scenario, seed))
    feeds.update(_jobs(net, dev, rng, base, online, scenario, _market(dev, net, scenario, seed)))
    feeds.update(_listings(dev, net, rng, base, online, scenario.honest_cross_listing))
    return feeds


def _in_window(code: np.ndarray, seed: int, stream: int, hour_index: int, rate: float, length: tuple[int, int]) -> np.ndarray:
    """Per device: is its group (operator, home connection; -1 = none) inside a window that
    started in this or an earlier hour? Each start hour draws from its own generator, so any
    hour can be simulated alone and the same windows come out."""
    size = int(code.max(initial=-1)) + 1
    inside = np.zeros(max(size, 1), bool)
    if size == 0 or rate <= 0:
        return np.zeros(code.size, bool)
    lo, hi = length
    for start in range(max(0, hour_index - hi + 1), hour_index + 1):
        r = np.random.default_rng([seed, stream, start])
        starts = r.random(size) < rate
        lasts = r.integers(lo, hi + 1, size)
        inside |= starts & (start + lasts > hour_index)
    return np.where(code >= 0, inside[np.maximum(code, 0)], False)


def _uptime(dev, rng, base, online, claims_online, present, down_from, scenario: Scenario, proxy) -> pl.DataFrame:
    idx = np.flatnonzero(present)
    # backend pings every registered device at the scenario's minutes (four times an hour by default)
    ping_minutes = np.array(scenario.ping_minutes)
    every = scenario.heartbeat_minutes
    p_dev = np.repeat(idx, ping_minutes.size)
    p_min = np.tile(ping_minutes, idx.size)
    p_up = _is_up(online[p_dev], down_from[p_dev], p_min) | proxy[p_dev]
    p_ok = p_up & (rng.random(p_dev.size) >= dev.ping_loss[p_dev])
    p_sec = p_min * 60 + rng.integers(0, 60, p_dev.size)
    # heartbeats: sent while the worker runs (or while a spoofing script pretends it does)
    h_dev = np.repeat(idx, len(range(0, 60, every)))
    h_min = dev.hb_phase[h_dev] + np.tile(np.arange(0, 60, every), idx.size)
    h_sent = _is_up(online[h_dev], down_from[h_dev], h_min) | dev.spoof_uptime[h_dev]
    h_dev, h_min = h_dev[h_sent], h_min[h_sent]
    h_sec = h_min * 60 + rng.integers(0, 60, h_dev.size)
    dev_idx = np.concatenate([p_dev, h_dev])
    sec = np.concatenate([p_sec, h_sec])
    ok = np.concatenate([p_ok, np.ones(h_dev.size, bool)])
    latency = np.round(rng.lognormal(np.log(40), 0.5, dev_idx.size), 2)
    order = np.lexsort((dev_idx, sec))
    return pl.DataFrame(
        {
            "ts": _stamp(base, sec[order] + rng.random(order.size)),
            "device_id": dev.device_id[dev_idx[order]],
            "source": np.where(np.arange(dev_idx.size) < p_dev.size, "ping", "heartbeat")[order],
            "ok": ok[order],
            "latency_ms": np.where(ok[order], latency[order], np.nan),
        }
    ).with_columns(pl.col("latency_ms").fill_nan(None))


def _hardware(dev, rng, base, claims_online) -> pl.DataFrame:
    idx = np.flatnonzero(claims_online)
    twice = idx[rng.random(idx.size) < 0.1]
    rows = np.concatenate([idx, twice])
    sec = rng.uniform(0, 3599, rows.size)
    order = np.argsort(sec, kind="stable")
    return dev.hardware[rows[order]].with_columns(ts=_stamp(base, sec[order])).select("ts", pl.exclude("ts"))


def _batches(groups: np.ndarray, size: int, rng) -> np.ndarray:
    """Batch number per challenged device: plan groups stay together, the rest are shuffled."""
    _, inv = np.unique(groups, return_inverse=True)
    group_rank = rng.permutation(inv.max() + 1)[inv]  # groups in random order, members adjacent
    keyed = np.lexsort((rng.random(groups.size), group_rank))
    batch = np.empty(groups.size, np.int64)
    batch[keyed] = np.arange(groups.size) // size
    return batch


def _pow(dev, scenario, rng, base, online, challenged, down_from, plan, hour_speed) -> pl.DataFrame:
    ch = scenario.challenges
    idx = np.flatnonzero(challenged)
    hour_index = int((base - epochs.parse(scenario.start)).total_seconds() // 3600)
    vram_due = (np.arange(dev.n) + hour_index) % ch.vram_every_hours == 0
    if plan:  # planned devices are also given a VRAM challenge, in their group's batch
        vram_due |= np.isin(dev.device_id, np.array(list(plan), dtype=object))
    frames = []
    for kind in ("matmul", "vram"):
        sel = idx if kind == "matmul" else idx[vram_due[idx]]
        if sel.size == 0:
            continue
        if plan:
            group_names = np.array([plan.get(d, "") for d in dev.device_id[sel]])
            _, groups = np.unique(group_names, return_inverse=True)
            groups = np.where(group_names == "", -1, groups)
            # unplanned devices each form their own group, shuffled between planned groups
            groups = np.where(groups < 0, groups.max(initial=0) + 1 + np.arange(sel.size), groups)
        else:
            groups = np.arange(sel.size)
        batch = _batches(groups, ch.batch_size, rng)
        frames.append(_challenges(dev, ch, rng, base, kind, sel, batch, online, down_from, scenario, hour_speed))
    return pl.concat(frames).sort("issued_at", "challenge_id")


def _challenges(dev, ch, rng, base, kind, sel, batch, online, down_from, scenario, hour_speed) -> pl.DataFrame:
    m = sel.size
    n_batches = int(batch.max()) + 1
    batch_sec = rng.uniform(0, 3000, n_batches)
    issued = batch_sec[batch]
    minute = (issued // 60).astype(np.int64)
    up = _is_up(online[sel], down_from[sel], minute)
    if kind == "matmul":
        n = np.where(dev.claimed_spec[sel] >= ch.datacenter_tflops, ch.matmul_n_datacenter, ch.matmul_n_consumer)
        samples = ch.matmul_samples
    else:
        bytes_ = ch.vram_share * dev.vram_claimed_mb[sel].astype(float) * 2**20
        n = (np.sqrt(bytes_ / 8) // 256 * 256).astype(np.int64)
        samples = ch.vram_samples
    n = n.astype(np.int64)
    # slices of one physical card challenged in the same batch share it
    key = batch * (dev.physical_gpu.max() + 1) + dev.physical_gpu[sel]
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    k = counts[inv]
    first_of_card = np.zeros(m, bool)
    first_of_card[np.unique(inv, return_index=True)[1]] = True

    ops = 2.0 * n.astype(float) ** 3
    speed = dev.true_spec[sel] * 1e12 * dev.efficiency[sel] * hour_speed[sel] * rng.lognormal(0, scenario.pow_noise, m)
    true_ms = ops / speed * 1000 * (k if kind == "matmul" else 1)
    overhead_ms = n.astype(float) ** 2 / 4e6 + rng.lognormal(np.log(60), 0.5, m)
    status = np.full(m, "ok", dtype=object)
    oom = kind == "vram"
    if oom:
        needed_mb = 8.0 * n.astype(float) ** 2 / 2**20
        short = needed_mb > dev.true_vram_mb[sel]
        oom_mask = short | ((k > 1) & ~first_of_card)
        status[oom_mask] = "error"
        if scenario.spoofed_vram_hang_share > 0:  # drawn only then: every other network's draws stay as they were
            status[short & (rng.random(m) < scenario.spoofed_vram_hang_share)] = "timeout"
    status[rng.random(m) < scenario.pow_error_rate] = "error"
    status[(rng.random(m) < scenario.pow_timeout_rate) | ~up] = "timeout"
    fake = dev.fake[sel]
    fake_silent = fake & (np.arange(m) % 2 == 0)
    status[fake_silent] = "timeout"
    status[fake & ~fake_silent] = "ok"
    ok = status == "ok"
    responded = np.where(status == "timeout", np.nan, issued * 1000 + np.where(ok, true_ms, 0) + overhead_ms)
    compute = np.where(ok, true_ms, np.nan)
    # cheats: impossible timings (far faster than the card, or longer than the round trip)
    tim = dev.cheat_timing[sel] & ok
    fast = tim & (sel % 2 == 0)
    compute = np.where(fast, compute / rng.uniform(4, 10, m), compute)
    compute = np.where(tim & ~fast, (responded - issued * 1000) + rng.uniform(50, 500, m), compute)
    compute = np.where(fake & ok, ops / (dev.claimed_spec[sel] * 8e11) * 1000, compute)

    seeds = rng.integers(0, 2**64, m, dtype=np.uint64)
    i_idx = (rng.random(m) * n).astype(np.int64)
    j_idx = (rng.random((m, samples)) * n[:, None]).astype(np.int64)
    cheating = dev.cheat_samples[sel] & (rng.random(m) < scenario.cheat_share)
    honest = ok & ~fake & ~cheating
    values = np.zeros((m, samples), np.int64)
    if honest.any():  # one sample per (challenge, column), as flat arrays for the compiled kernel
        rows = np.flatnonzero(honest)
        flat = sample_entries(np.repeat(seeds[rows], samples), np.repeat(n[rows], samples),
                              np.repeat(i_idx[rows], samples), j_idx[rows].ravel())  # fmt: skip
        values[rows] = flat.reshape(rows.size, samples)
    wrong = ok & ~honest
    values[wrong] = rng.integers(-4000, 4000, (int(wrong.sum()), samples)) * 3 + 1
    sample_json = [
        "[" + ",".join(f"[{i_idx[r]},{j_idx[r, s]},{values[r, s]}]" for s in range(samples)) + "]" if ok[r] else None
        for r in range(m)
    ]
    digest = [
        hashlib.sha256(f"{seeds[r]}:{n[r]}:{dev.device_id[sel[r]]}".encode()).hexdigest() if ok[r] else None for r in range(m)
    ]
    prefix = f"{kind[0]}{base:%Y%m%d%H}"
    challenge_id = [f"{prefix}-{c:07d}" for c in range(m)]
    batch_id = [f"{prefix}-b{b:05d}" for b in batch]
    return pl.DataFrame(
        {
            "challenge_id": challenge_id,
            "batch_id": batch_id,
            "device_id": dev.device_id[sel],
            "kind": kind,
            "issued_at": _stamp(base, issued),
            "responded_at": _stamp(base, np.nan_to_num(responded / 1000, nan=0.0)),
            "status": status.astype(str),
            "n": n,
            "seed": pl.Series(seeds, dtype=pl.UInt64),
            "compute_ms": np.round(compute, 3),
            "result_digest": digest,
            "samples": sample_json,
        }
    ).with_columns(
        pl.when(pl.col("status") == "timeout").then(None).otherwise(pl.col("responded_at")).alias("responded_at"),
        pl.col("compute_ms").fill_nan(None),
    )


def _accounts(net: Network, start: datetime, hour_index: int) -> dict[str, pl.DataFrame]:
    acc = net.accounts.with_columns(
        (pl.lit(start) - pl.duration(milliseconds=(pl.col("created_s") * 1000).cast(pl.Int64))).alias("created_at")
    )
    lo = start + timedelta(hours=hour_index)
    hi = lo + timedelta(hours=1)
    due = acc.filter((pl.col("created_at") < hi) & ((pl.col("created_at") >= lo) | (hour_index == 0)))
    if due.is_empty():
        return {}
    return {
        "accounts": due.select(
            "account_id",
            pl.col("created_at").dt.truncate("1ms"),
            "email",
            "wallet",
            "signup_ip",
            "referrer_account_id",
        ).sort("created_at", "account_id")
    }


def _io(base_units: np.ndarray) -> list[str]:
    """Integer base units -> exact decimal IO strings."""
    return [f"{v // BASE_UNITS_PER_IO}.{v % BASE_UNITS_PER_IO:08d}".rstrip("0").rstrip(".") for v in base_units.tolist()]


def _stakes(net: Network, rng, base, hour_index: int, scenario: Scenario, seed: int) -> dict[str, pl.DataFrame]:
    """Stake at the start (200 IO x max(1, multiplier) per device); a few changes each hour; flash
    stakes round the hour and honest stakes undone within minutes (``_round_trips``)."""
    cat = load_catalogue().select("model_key", "reward_multiplier")
    mult = dict(zip(cat["model_key"], cat["reward_multiplier"]))
    dev = net.devices.join(net.accounts.select("account", "wallet", "funder"), on="account")
    trips = _round_trips(dev, base, hour_index, scenario, seed)
    if hour_index == 0:
        staked = dev.filter(pl.Series(rng.random(dev.height) < 0.75))
    elif hour_index % 6 == 3:
        staked = dev.filter(pl.Series(rng.random(dev.height) < 0.002))
    else:
        staked = dev.clear()
    if staked.is_empty() and trips.is_empty():
        return {}
    required = np.array([200 * max(1.0, mult[m]) for m in staked["claimed_model"]])
    units = (required * BASE_UNITS_PER_IO).astype(np.int64)
    ts = rng.uniform(0, 3599, staked.height)
    kind = np.where(np.arange(staked.height) % 7 == 0, "delegate", "stake") if hour_index == 0 else "unstake"
    events = pl.DataFrame(
        {
            "ts": _stamp(base, ts),
            "wallet": staked["wallet"],
            "device_id": staked["device_id"],
            "kind": kind if isinstance(kind, np.ndarray) else np.full(staked.height, kind),
            "amount_io": _io(units),
            "funder_wallet": staked["funder"],
        }
    )
    events = pl.concat([events, trips], how="vertical_relaxed")
    if hour_index == 0 and net.wallet_links.height:  # intermediate wallets delegate to the shared pool
        links = net.wallet_links
        events = pl.concat([events, pl.DataFrame({
            "ts": _stamp(base, rng.uniform(0, 3599, links.height)),
            "wallet": links["wallet"],
            "device_id": pl.Series([None] * links.height, dtype=pl.String),
            "kind": np.full(links.height, "delegate"),
            "amount_io": _io(np.full(links.height, 1000 * BASE_UNITS_PER_IO, dtype=np.int64)),
            "funder_wallet": links["funder"],
        })])  # fmt: skip
    events = events.sort("ts", "wallet").with_columns(
        pl.format("se{}-{}", pl.lit(f"{base:%Y%m%d%H}"), pl.int_range(pl.len()).cast(pl.String).str.zfill(7)).alias("event_id")
    )
    return {"stake_events": events.select("event_id", pl.exclude("event_id"))}


def _round_trips(dev: pl.DataFrame, base, hour_index: int, scenario: Scenario, seed: int) -> pl.DataFrame:
    """Stakes withdrawn within minutes, from generators of their own (the rest of the hour is the
    same with or without them): each stake flasher's own wallet withdraws the flash stake it put
    on its first device before this hour and, in ``stake_flash_hours`` of the hours, stakes
    20-150k IO again 40-180 s before the next; an honest owner now and then stakes by mistake and
    withdraws it 1-20 minutes later."""

    def flashes(h: int) -> np.ndarray:
        return np.random.default_rng([seed, 37, h]).random(owners.height) < scenario.stake_flash_hours

    owners = dev.filter(pl.col("population") == "stake_flasher").group_by("account").agg(
        pl.col("device_id").min(), pl.col("wallet").first(), pl.col("funder").first()
    ).sort("account")  # fmt: skip
    amounts = np.random.default_rng([seed, 38]).integers(20_000, 150_001, owners.height) * BASE_UNITS_PER_IO
    rng = np.random.default_rng([seed, 39, hour_index])
    out = flashes(hour_index - 1) if hour_index > 0 else np.zeros(owners.height, bool)
    into = flashes(hour_index)
    honest = dev.filter((pl.col("fraud_types").list.len() == 0) & (pl.col("first_hour") <= hour_index))
    undo = honest.filter(pl.Series(rng.random(honest.height) < scenario.stake_undo_rate))
    undo_at = rng.uniform(0, 3599 - 20 * 60, undo.height)
    undo_units = rng.integers(1, 1001, undo.height) * BASE_UNITS_PER_IO
    parts = [
        (owners.filter(pl.Series(out)), rng.uniform(20, 200, int(out.sum())), "unstake", amounts[out]),
        (owners.filter(pl.Series(into)), 3600 - rng.uniform(40, 180, int(into.sum())), "stake", amounts[into]),
        (undo, undo_at, "stake", undo_units),
        (undo, undo_at + rng.uniform(60, 20 * 60, undo.height), "unstake", undo_units),
    ]
    return pl.concat(
        [
            pl.DataFrame(
                {
                    "ts": _stamp(base, at),
                    "wallet": who["wallet"],
                    "device_id": who["device_id"],
                    "kind": np.full(who.height, kind),
                    "amount_io": _io(units),
                    "funder_wallet": who["funder"],
                },
                schema_overrides={"kind": pl.String, "device_id": pl.String, "wallet": pl.String, "funder_wallet": pl.String},
            )
            for who, at, kind, units in parts
        ],
        how="vertical_relaxed",
    )


@dataclass(frozen=True)
class Market:
    """Hourly prices in cents: each device's (its owner's price; a premium card's mark-up), each
    renter's factor (spot or on-demand), and what each wash trader pays."""

    device: np.ndarray
    renter: dict[str, float]
    wash: np.ndarray


def _market(dev: DeviceArrays, net: Network, scenario: Scenario, seed: int) -> Market:
    """The network's prices, from a generator of their own so the rest of the network is drawn as
    before. Without a market (``market_spread`` (0, 0), no premium cards) every honest job costs
    45 cents an hour and a wash trader ``wash_price`` x 45 (the default: 20 cents)."""
    owner_sigma, renter_sigma = scenario.market_spread
    lo, hi = scenario.wash_price
    r = np.random.default_rng([seed, 23])
    if owner_sigma == 0 and renter_sigma == 0 and scenario.premium_cards == 0:
        going = np.full(dev.n, 45.0)
        return Market(going, {}, going * r.uniform(lo, hi, dev.n))
    going = 5.0 + 0.25 * dev.claimed_spec  # cents an hour: 46 for an RTX 4090, 252 for an H100 SXM
    device = going * np.exp(r.normal(0.0, owner_sigma, dev.n))
    device = np.where(r.random(dev.n) < scenario.premium_cards, device * r.uniform(1.6, 2.5, dev.n), device)
    clients = net.accounts.filter(pl.col("population") == "client")["account_id"].to_list()
    renter = dict(zip(clients, np.exp(r.normal(0.0, renter_sigma, len(clients))).tolist()))
    return Market(device, renter, going * r.uniform(lo, hi, dev.n))


def _jobs(net: Network, dev: DeviceArrays, rng, base, online, scenario: Scenario, market: Market) -> dict[str, pl.DataFrame]:
    """Honest rentals from client accounts at the market's prices; wash traders hire their own
    devices (for minutes by default, ``wash_job_hours``) at what they choose to pay."""
    clients = net.accounts.filter(pl.col("population") == "client")["account_id"].to_numpy()
    honest = np.flatnonzero(online & ~dev.wash & (rng.random(dev.n) < 0.01))
    wash = np.flatnonzero(online & dev.wash)
    wash_client = (
        net.devices.select("cluster")
        .join(net.accounts.filter(pl.col("role") == "client").select("cluster", "account_id"), on="cluster", how="left")
        ["account_id"].to_numpy()
    )  # fmt: skip
    idx = np.concatenate([honest, wash])
    if idx.size == 0 or clients.size == 0:
        return {}
    client = np.concatenate([rng.choice(clients, honest.size), wash_client[wash]])
    hours = np.concatenate([rng.uniform(1, 12, honest.size), rng.uniform(*scenario.wash_job_hours, wash.size)])
    ended = rng.uniform(0, 3599, idx.size)
    started = ended - hours * 3600
    created = started - rng.uniform(5, 120, idx.size)
    status = np.where(rng.random(idx.size) < 0.9, "completed", "cancelled_by_client")
    status = np.where(np.arange(idx.size) >= honest.size, "completed", status)
    renter = np.array([market.renter.get(c, 1.0) for c in client[: honest.size]])
    rate = np.concatenate([market.device[honest] * renter, market.wash[wash]])
    cents = (hours * rate).astype(np.int64) + 1
    return {
        "jobs": pl.DataFrame(
            {
                "job_id": [f"job{base:%Y%m%d%H}-{k:07d}" for k in range(idx.size)],
                "client_account_id": client,
                "device_id": dev.device_id[idx],
                "created_at": _stamp(base, created),
                "started_at": _stamp(base, started),
                "ended_at": _stamp(base, ended),
                "status": status,
                "paid_usd": [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()],
            }
        ).sort("ended_at", "job_id")
    }


def _listings(dev: DeviceArrays, net: Network, rng, base, online, honest_cross_listing: bool) -> dict[str, pl.DataFrame]:
    """The same GPUs seen on other networks: cross-listing from the same host (written only with
    ``honest_cross_listing``; drawn either way, so the rest of the hour does not change), and
    double listing of one identity from somewhere else at the same time."""
    idx = np.flatnonzero((dev.cross_list & online) | dev.double_list)
    if idx.size == 0:
        return {}
    hw = dev.hardware[idx]
    elsewhere = dev.double_list[idx]
    other_ip = [f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(11, 223, (idx.size, 4)).tolist()]
    listings = (
        pl.DataFrame(
            {
                "ts": _stamp(base, rng.uniform(0, 3599, idx.size)),
                "network": rng.choice(OTHER_NETWORKS, idx.size),
                "gpu_uuid": hw["gpu_uuid"],
                "host_fingerprint": np.where(elsewhere, None, hw["host_fingerprint"].to_numpy()),
                "ip": np.where(elsewhere, np.array(other_ip, dtype=object), hw["ip"].to_numpy()),
            }
        )
        .filter(pl.Series(elsewhere | honest_cross_listing))
        .sort("ts")
    )
    return {"external_listings": listings} if listings.height else {}
