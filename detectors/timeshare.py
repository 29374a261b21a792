"""``timeshare``: one machine, card or address that several accounts hold in turn.

A time-share farms accounts with one set of hardware: the machine (or its GPU) serves one
account's devices for a few hours, then another's, and comes back, so each account keeps its
uptime, its tier and its share of the pool while the identities are never online together
(``duplicate_hardware`` compares devices alive at the same time, and misses it). Two
independently written networks did this: six 4090s rotated through four accounts each in
six-hour shifts behind one address (new host and card identities for each account), and two
hosts whose fingerprint passed among five accounts each every few hours through proxies.

For each identity reported in the last ``window_hours`` of hardware reports (the host
fingerprint, the GPU UUID, the public address: an IPv6 /64 is one), the hours in which exactly
one account reported it are put in order. A *handover* is a change of that account from one such
hour to the next; a *return* is a handover to an account that held the identity alone before
(A, B, A). Hours in which several accounts report it count as *shared*.

Honest model: a machine or card has one owner at a time and changes hands when it is sold (once:
a handover, no return; independently written networks' sales and reinstalls, 0 returns); an
address passes between customers of a pool (dynamic lines, carrier-grade NAT, VPN exits), and
then its customers are on other addresses of the pool too, and on a busy pool together with
others; a home's members are online together, or on a daily routine. So an identity is held in
turn when it

- comes back at least ``min_returns`` times (an A, B, A, B at least: no sale returns twice),
- among at most ``max_accounts`` accounts (more is a placeholder value or a pool, not a rota),
- with at most ``max_shared_share`` of its hours reported by several accounts at once (a
  handover's hour has both; a shared pool or a home's NAT has nearly every hour shared),

and, for a machine or card, ``min_accounts_machine`` accounts at least (two people who share
one machine in turns, each enrolled: a cybercafe's day and night managers, flatmates on one PC,
alternate every day; a twenty-sixth network written by others had two cafes' PCs enrolled so,
and 26 of them were held; the rings of three networks passed a machine among four or more
accounts), and, for an address, ``min_accounts_address`` accounts at least (two members of a
home whose routines do not overlap alternate every day; four owners in shifts do not), each of which
reported from it in at least ``min_stay_share`` of the hours it reported at all: a rota's
accounts sit on the one address, a pool's customers move across its addresses.

Every device that reported the identity in the window is held (``probation``, proof
``suspicion``: which operator runs the machine is not in the data, and a person reviews the
accounts); the hold lasts while the rota does and expires like any other. None of the honest
sales, reinstalls, moves, pools, VPN exits or homes of the two networks came back even once
(their machines and addresses were handed over at most once), and the rule needs two returns.
What it can hold that is honest: a cloud GPU passed through to whoever rents it, when two or
more tenants who each run a worker rent the same card in turns within two days (none of the two
networks' cloud tenants did; a person's verdict override clears it).
"""

from __future__ import annotations

from typing import Self

import polars as pl

from detectors.base import Detector, Evidence


class Timeshare(Detector):
    name = "timeshare"
    fraud_type = "sybil"
    writes = ("timeshare_rotas",)

    def __init__(
        self,
        threshold: float = 0.5,
        window_hours: int = 48,
        min_returns: int = 2,
        max_accounts: int = 20,
        max_shared_share: float = 0.25,
        min_accounts_address: int = 3,
        min_stay_share: float = 0.8,
        min_accounts_machine: int = 3,
    ):
        super().__init__(threshold)
        if min(min_returns, max_accounts, min_accounts_address, min_accounts_machine) < 2:
            raise ValueError("timeshare: min_returns, max_accounts, min_accounts_address and min_accounts_machine must be >= 2")
        if not 0 <= max_shared_share < 1 or not 0 < min_stay_share <= 1:
            raise ValueError("timeshare: max_shared_share must be in [0, 1), min_stay_share in (0, 1]")
        self.window_hours = window_hours
        self.min_returns = min_returns
        self.max_accounts = max_accounts
        self.max_shared_share = max_shared_share
        self.min_accounts_address = min_accounts_address
        self.min_stay_share = min_stay_share
        self.min_accounts_machine = min_accounts_machine

    def fit(self, evidence: Evidence) -> Self:
        """The epoch's rotas, one row per (identity, device that reported it in the window), into
        ``timeshare_rotas``: the sybil graph reads them as a link among the rota's accounts."""
        self.tables_["timeshare_rotas"] = evidence.sql(
            """
            WITH combos AS MATERIALIZED (  -- which accounts reported which identities in the window (about one row a
                -- device; hashed: a 64-bit collision only lets a value through to the exact comparisons below)
                SELECT DISTINCT hash(account_id) AS account, hash(host_fingerprint) AS host, hash(gpu_uuid) AS gpu_uuid,
                       hash(ip_site(ip)) AS ip
                FROM hardware WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch AND account_id IS NOT NULL
            ),
            few AS MATERIALIZED (  -- identities of a few accounts: the only ones that can be a rota
                SELECT 'host' AS kind, host AS value FROM combos GROUP BY host
                HAVING count(DISTINCT account) BETWEEN 2 AND $max_accounts
                UNION ALL
                SELECT 'gpu_uuid', gpu_uuid FROM combos GROUP BY gpu_uuid
                HAVING count(DISTINCT account) BETWEEN 2 AND $max_accounts
                UNION ALL
                SELECT 'ip', ip FROM combos GROUP BY ip
                HAVING count(DISTINCT account) BETWEEN 2 AND $max_accounts
            ),
            reports AS MATERIALIZED (  -- their reports in the window, hour by hour, with which identity is one of them
                SELECT DISTINCT _hour AS hour, device_id, account_id, host_fingerprint, gpu_uuid, ip_site(ip) AS ip,
                       hash(host_fingerprint) IN (SELECT value FROM few WHERE kind = 'host') AS host_few,
                       hash(gpu_uuid) IN (SELECT value FROM few WHERE kind = 'gpu_uuid') AS gpu_few,
                       hash(ip_site(ip)) IN (SELECT value FROM few WHERE kind = 'ip') AS ip_few
                FROM hardware
                WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch AND account_id IS NOT NULL
                  AND (host_few OR gpu_few OR ip_few)
            ),
            held AS (  -- each of the few identities with its holders' hours (a NULL one is no identity)
                SELECT 'host' AS kind, host_fingerprint AS value, account_id, hour FROM reports
                WHERE host_few AND host_fingerprint IS NOT NULL
                UNION ALL
                SELECT 'gpu_uuid', gpu_uuid, account_id, hour FROM reports WHERE gpu_few AND gpu_uuid IS NOT NULL
                UNION ALL
                SELECT 'ip', ip, account_id, hour FROM reports WHERE ip_few AND ip IS NOT NULL
            ),
            hours AS MATERIALIZED (  -- each identity's hours: by how many accounts, and which one when alone
                SELECT kind, value, hour, count(DISTINCT account_id) AS accounts, min(account_id) AS account_id
                FROM held GROUP BY kind, value, hour
            ),
            alone AS (  -- hours of one account, in order; the first such hour of each account
                SELECT kind, value, hour, account_id,
                       lag(account_id) OVER (PARTITION BY kind, value ORDER BY hour) AS before,
                       min(hour) OVER (PARTITION BY kind, value, account_id) AS first_alone
                FROM hours WHERE accounts = 1
            ),
            turns AS (
                SELECT kind, value, count(*) FILTER (before <> account_id) AS handovers,
                       count(*) FILTER (before <> account_id AND first_alone < hour) AS returns
                FROM alone GROUP BY kind, value
            ),
            spread AS (  -- its hours, and those reported by several accounts at once
                SELECT kind, value, count(*) AS hours, count(*) FILTER (accounts > 1) AS shared FROM hours GROUP BY ALL
            ),
            holders_of AS (SELECT kind, value, count(DISTINCT account_id) AS accounts FROM held GROUP BY ALL),
            on_address AS (  -- the hours each holder of an address that came back reported from it
                SELECT value, account_id, count(DISTINCT hour) AS n FROM held
                WHERE kind = 'ip' AND value IN (SELECT value FROM turns WHERE kind = 'ip' AND returns >= $min_returns)
                GROUP BY ALL
            ),
            stays AS (  -- for such an address: the least share of its holders' reporting hours spent on it
                SELECT h.value, min(h.n / a.n) AS stay, count(*) AS holders
                FROM on_address h
                JOIN (SELECT account_id, count(DISTINCT _hour) AS n FROM hardware
                      WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch
                        AND account_id IN (SELECT account_id FROM on_address) GROUP BY ALL) a USING (account_id)
                GROUP BY h.value
            ),
            rota AS (
                SELECT t.kind, t.value, n.accounts, t.handovers, t.returns, s.hours, s.shared
                FROM turns t JOIN spread s USING (kind, value) JOIN holders_of n USING (kind, value)
                LEFT JOIN stays y ON t.kind = 'ip' AND y.value = t.value
                WHERE t.returns >= $min_returns AND s.shared <= $max_shared * s.hours
                  AND CASE WHEN t.kind = 'ip' THEN y.holders >= $min_accounts_address AND y.stay >= $min_stay
                           ELSE n.accounts >= $min_accounts_machine END
            ),
            holders AS (  -- every device that reported a rota's identity in the window
                SELECT DISTINCT x.kind, x.value, r.device_id, r.account_id, x.accounts, x.handovers, x.returns, x.hours,
                       x.shared AS shared_hours
                FROM rota x JOIN reports r
                  ON CASE x.kind WHEN 'host' THEN r.host_fingerprint WHEN 'gpu_uuid' THEN r.gpu_uuid ELSE r.ip END = x.value
            )
            SELECT * FROM holders ORDER BY kind, value, device_id
            """,
            window=self.window_hours,
            min_returns=self.min_returns,
            max_accounts=self.max_accounts,
            max_shared=self.max_shared_share,
            min_accounts_address=self.min_accounts_address,
            min_stay=self.min_stay_share,
            min_accounts_machine=self.min_accounts_machine,
        )
        return self

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH per_device AS (  -- the strongest rota each device is in (most returns), and how many it is in
                SELECT device_id, arg_max(account_id, returns) AS account_id, count(*) AS rotas,
                       arg_max(struct_pack(kind, value, handovers, returns, hours, shared_hours, accounts),
                               (returns, kind, value)) AS r
                FROM timeshare_rotas WHERE epoch = $epoch GROUP BY device_id
            )
            SELECT device_id, account_id, CASE WHEN r.kind = 'ip' THEN 0.8 ELSE 0.85 END AS score, 'probation' AS action,
                   format('one {} held in turn by {} accounts over the last {} hours: it changed account {} times and came '
                          'back to an account after another held it {} times, with {} of its {} hours reported by '
                          'several accounts at once{}; a machine, card or address changes hands once when sold or '
                          'reassigned: one operator''s accounts taking turns? held for review',
                          CASE r.kind WHEN 'host' THEN 'machine (host fingerprint)' WHEN 'gpu_uuid' THEN 'card (GPU UUID)'
                                      ELSE 'address' END,
                          r.accounts, $window, r.handovers, r.returns, r.shared_hours, r.hours,
                          CASE WHEN rotas > 1 THEN format(' (one of {} such identities it reported)', rotas) ELSE '' END)
                     AS reason,
                   -- a release publishes the identity in its public form (pseudonym, /24, /48)
                   CAST(json_object('proof', 'suspicion', 'kind', r.kind, 'value', r.value,
                        'accounts', r.accounts, 'handovers', r.handovers, 'returns', r.returns, 'hours', r.hours,
                        'shared_hours', r.shared_hours, 'rotas', rotas) AS VARCHAR) AS details
            FROM per_device
            """,
            window=self.window_hours,
        )
