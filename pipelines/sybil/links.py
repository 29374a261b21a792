"""Account links: which accounts share which attribute values, scored against the network's own
base rates, in time linear in the number of attribute values.

Each account gets attribute values of several kinds (table below). Two accounts that share a
value are linked with ``strength(kind) x rarity``, where ``rarity = log(N / n) / log(N)``: n is
how many accounts hold the value and N how many accounts hold any value of that kind, so a
value is weighed by how surprising it is *on this network* (a funder of 2 accounts out of 3,000
is ~0.9, one of 120 is ~0.4), not by a fixed table. Values held by more than the kind's
``max_n`` accounts (a cloud ASN, a big exchange's hot wallet) link nobody.

**Hubs by co-occurrence.** Size alone cannot tell a ring's funder (120 accounts that also share
a mailbox shape, a restart time and a VM template) from a small exchange's hot wallet (120
strangers) or a campus NAT. A value held by more than ``hub_min`` accounts keeps its links only
when at least ``min_share`` of its holders also share one value of another operator kind
(``STRONG_KINDS``) *and* that overlap is at least ``min_lift`` times what chance gives on this
network (``overlap x N / (n x n_other)``; 1 is independence). An exchange's customers or a
popular desktop configuration overlap other values only as often as chance does; a ring's
values overlap each other almost completely. A value failing this is a hub: it links nobody,
and it is kept in ``account_hubs`` (with its best lift) for the record. A value passing it
links only holders that also hold its supporting co-value (the one covering most of its
holders): a small exchange that funded a ring's wallets and a few honest customers links the
ring's members, not the customers. Counting overlaps
walks each large value's holders once: linear, no pairs.

**Cohesion**, the second way a large value keeps its links: a ring may share one VM template
while its funding is split over small funders and its mailboxes look human, so no single
co-value covers half of it. The value keeps its links when at least ``min_share`` of its
holders are each tied to two other holders by small operator values (held by at most
``cohesion_max_n``) and those ties are at least ``min_lift`` times what random accounts of
this network would have: each holder's co-holders through its small values, times the chance
(n - 1) / (N - 1) that one is among the value's other holders. It links only those tied
holders, and only within a group their ties connect (``cohesion_pass`` keeps each passing value
with its lift, ``cohesion_groups`` the groups): two rings restarting in the same two-hour bin
share that value, but not one group. A pair sharing such a grouped value is kept as an edge
even when it is the pair's only link.

**Linear pair generation.** A value's holders are paired in full when there are at most
``block`` of them; a larger group is split into blocks of at most ``block`` holders by a hash
of (account, kind, value) and paired within each block, so no value yields more than
``block - 1`` pairs per holder however common it is (each kind and value blocks differently,
so the union over a ring's kinds still ties the ring together). Every candidate pair then gets
*every* value its two accounts share, so blocking loses no evidence on the pairs it keeps.

| kind | value | strength | max_n |
|---|---|---|---|
| funding | a wallet one, two or three hops up the funding chain (``stake_events``); the account's own wallet where it funds another account | 0.6 | 300 |
| email | normalized address (gmail dots and +tags removed; +tags elsewhere) | 0.7 | 300 |
| wallet | the account's payout wallet (its latest): accounts paid to one wallet are paid to one owner | 0.7 | 300 |
| email_pattern | mailbox shape at five granularities (below) | 0.35 | 300 |
| restart | circular mean time of day of short heartbeat silences, in 30/60/120-minute bins on two offsets | 0.45 | 300 |
| hw_fingerprint | worker version + CPU model + cores + RAM (one VM template) | 0.3 | 300 |
| host | host fingerprint | 0.6 | 50 |
| gpu | GPU UUID | 0.6 | 20 |
| ip | public IP | 0.15 | 100 |
| subnet | IPv4 /24 | 0.05 | 300 |
| signup_ip | IP at signup | 0.15 | 100 |
| referral | referrer and referred account | 0.2 | 300 |
| created | sign-up time in 15-minute and 60-minute bins | 0.05 | 300 |
| staked | amount of a stake (or delegation) from the account's wallet, in 15- and 60-minute bins on two offsets, for accounts that staked in at most two quarter hours | 0.5 | 300 |
| host_turns, gpu_turns, ip_turns | a machine, card or address the accounts held in turn (``detectors.timeshare``'s rotas of the epoch) | 0.8 | 20 |

Mailbox shapes: ``p1`` domain + leading letters + class shape of the rest (``kai|9999aa9``),
``p2`` domain + class shape of the whole local part, ``p3`` domain + runs of classes + length
(``a9a|12``), ``p4`` runs + length on any domain, ``p5`` domain + length + which classes occur
(a vendor's random strings), ``p6`` any address at a disposable-mail provider (the
``disposable-email-domains`` list: Guerrilla Mail's grr.la, sharklasers.com, yopmail.com, ...).
Coarse shapes are common among honest people, so the base rate makes them weak and cohesion
makes the commonest hubs. A throwaway mailbox is a likeness too: a privacy-minded stranger uses
one now and then, so, like any shape, it ties only a group that holds something else as well
(five networks written by others: 53 accounts of three rings, no honest account, on such
addresses, one ring's 30 over five Guerrilla Mail domains, tied besides only by a cloud VM
template, a sign-up hour and one referrer).
"""

from __future__ import annotations

import duckdb

KINDS: dict[str, tuple[float, int]] = {
    "funding": (0.6, 300),
    "email": (0.7, 300),
    "email_pattern": (0.35, 300),
    "restart": (0.45, 300),
    "hw_fingerprint": (0.3, 300),
    "host": (0.6, 50),
    "gpu": (0.6, 20),
    "ip": (0.15, 100),
    "subnet": (0.05, 300),
    "signup_ip": (0.15, 100),
    "referral": (0.2, 300),
    "created": (0.05, 300),
    "staked": (0.5, 300),
    "host_turns": (0.8, 20),
    "gpu_turns": (0.8, 20),
    "ip_turns": (0.8, 20),
    "wallet": (0.7, 300),
}
"""kind -> (strength, max_n)."""

STRONG_KINDS = (
    "funding",
    "email",
    "wallet",
    "email_pattern",
    "restart",
    "hw_fingerprint",
    "host",
    "gpu",
    "host_turns",
    "gpu_turns",
    "ip_turns",
    "staked",
)
"""Operator kinds: what one operator's automation leaves behind; they can make a cluster a ring.
The rest (where accounts are, who referred whom, when they signed up) only corroborate."""

SOURCES: dict[str, str] = {"email_pattern": "email", "host_turns": "host", "gpu_turns": "gpu"}
"""Kinds derived from another kind's attribute: a value and its derived values are one fact, so
one can never be the co-value that shows the other marks a group (every holder of
``test@test.com`` also holds its shape ``p2|test.com|aaaa``; 40 strangers who typed that
placeholder share nothing else), and a ring member tied by a machine and by holding that machine
in turn is tied by one fact (the reject rule counts facts). An address held in turn is a fact of
its own: sharing an address is no operator kind (NAT, families, labs), taking turns on it is."""

TURN_KIND_OF = {"host": "host_turns", "gpu_uuid": "gpu_turns", "ip": "ip_turns"}
"""``timeshare_rotas.kind`` -> the link kind of a rota of that identity."""
TURN_KINDS = tuple(TURN_KIND_OF.values())
"""A machine, card or address held in turn (``detectors.timeshare``): a home's members are
online together or on their daily routines, not in shifts that keep coming back, so a group of
a few accounts behind one address that holds one in turn is not a home
(``communities.score_clusters``)."""

FLEET_KINDS = ("hw_fingerprint", "restart")
"""Kinds that say how machines are run, not who owns the accounts: a GPU hosting facility runs
every tenant's machine on its standard server image and reboots them all in one maintenance
window, so its honest tenants share both. These corroborate a ring but never make one without
a tie of the accounts themselves (a funder, a mailbox, a host, a card, or a mailbox shape a
group holds): 28 of 40 tenants of one hall were in probation as a ring by these two alone
(``communities.score_clusters``)."""

SHAPE_KINDS = ("email_pattern",)
"""Kinds that are a likeness, not an identity: strangers share a coarse mailbox shape in pairs
by chance (``first.last@`` of one length), so a shape ties accounts only when a group holds it."""

DISPOSABLE_SHAPE = "p6|disposable"
"""The shape of every address at a disposable-mail provider, whichever provider."""

ANY_DOMAIN_SHAPE = "p4|"
"""The mailbox shape read on any domain (runs + length). Across domains a shape is a naming
convention: every hosting company's operations mailbox at its own domain is ``ops@`` or
``gpu@``, and 18 companies of a network written by others were one community by that shape and
their standard server builds. It corroborates, but ties a group as its own only at one domain:
three members holding it there hold that domain's shape (p3) too."""

SITE_KINDS = ("ip", "signup_ip")
"""Where accounts connect and sign up from. Most of a group behind one address is one site (a
lab, an office, a hosting hall), and a site's institution hands its members mailboxes at its
own domain (``first.last@cs.uni-example.edu``): there a mailbox shape is the site's, not an
operator's (``communities.score_clusters``)."""

BURST_KINDS = ("staked",)
"""Kinds that are one act at one moment: a script stakes one amount for every account it runs
within minutes (an independently written network's careful ring staked 12 x the same amount in
9 minutes, its only tie besides a hosting product's server image, an exchange and a reboot
time). Strangers stake the network's minimum in the same quarter hour in pairs by chance (a
launch, a referral wave), so like a mailbox shape a stake ties accounts only when a group holds
it (``communities.score_clusters``), and like a time it never joins two communities."""

PAYMENT_KINDS = ("funding", "staked")
"""A stake burst (``staked``: one amount in one quarter hour) between two accounts that one funder
ties restates that funder's payment: one wallet paying several accounts' stakes in one act is
seen once as the funder and again as the burst's amount and minute. A twenty-fifth network written
by others had an influencer's guild grant stake its new members in one burst, and two members on
a popular laptop (one template) were rejected and slashed for funding, the burst and the template.
Between accounts no funder ties, a burst is a fact of its own (a script staking exchange-bought
tokens for every account it runs). A staking service that stakes its customers' tokens in daily
batches is one funder too (a twenty-seventh network's 45 customers were held as a ring for its
wallet and its batches)."""


WEAK_KINDS = ("subnet", "created")
"""Kinds so common that they only add weight to pairs other kinds found."""

CLOCK_KINDS = ("restart", "created", "staked")
"""Kinds that are a time (of day, of sign-up): unrelated operators share the clock (cron jobs
at round hours, one launch day), so these corroborate a community but never join two
(``communities._merge_parts``): two rings with their own templates whose scripts restart in the
same half hour were merged into one by restart links between nearly every pair of them."""

ATTRS_SQL = r"""
CREATE OR REPLACE TEMP TABLE account_attrs AS
WITH acc AS MATERIALIZED (  -- latest version of every account
    SELECT account_id, arg_max(email, _hour) AS email, arg_max(wallet, _hour) AS wallet,
           arg_max(signup_ip, _hour) AS signup_ip, arg_max(referrer_account_id, _hour) AS referrer,
           arg_max(created_at, _hour) AS created_at
    FROM accounts WHERE _hour <= $epoch GROUP BY account_id
),
hw AS MATERIALIZED (
    SELECT DISTINCT account_id, ip_site(ip) AS ip, host_fingerprint, gpu_uuid,  -- an IPv6 /64 is one site
           concat_ws('|', worker_version, cpu_model, cpu_cores, ram_gb) AS hw_fingerprint
    FROM hardware
    WHERE _hour > hours_back($epoch, $window) AND _hour <= $epoch
),
funded AS (SELECT DISTINCT wallet, funder_wallet FROM stake_events WHERE _hour <= $epoch AND funder_wallet <> wallet),
hop1 AS MATERIALIZED (SELECT a.account_id, f.funder_wallet AS w FROM acc a JOIN funded f ON f.wallet = a.wallet),
hop2 AS MATERIALIZED (SELECT h.account_id, f.funder_wallet AS w FROM hop1 h JOIN funded f ON f.wallet = h.w),
hop3 AS MATERIALIZED (SELECT h.account_id, f.funder_wallet AS w FROM hop2 h JOIN funded f ON f.wallet = h.w),
bursts AS (  -- what each account's wallet staked or delegated, and when (minutes since the epoch), for
    -- accounts that staked in one act or two: a fleet staking hundreds of cards through a launch hour
    -- holds every quarter hour's values, which every other fleet holds too (44 honest datacenter
    -- operators were one ring by them at 100,000 devices)
    SELECT a.account_id, CAST(s.amount_io AS VARCHAR) AS amount, epoch(s.ts) / 60 AS minute
    FROM acc a JOIN stake_events s ON s.wallet = a.wallet
    WHERE s._hour <= $epoch AND s.kind IN ('stake', 'delegate') AND s.amount_io > 0 AND s.ts IS NOT NULL
    QUALIFY count(DISTINCT floor(epoch(s.ts) / 900)) OVER (PARTITION BY a.account_id) <= 2
),
email AS MATERIALIZED (
    SELECT account_id, lower(split_part(email, '@', 2)) AS domain,
           regexp_replace(lower(split_part(email, '@', 1)), '\+.*$', '') AS local
    FROM acc WHERE email LIKE '%@%'
),
shaped AS (
    SELECT account_id, domain, local, regexp_extract(local, '^[a-z]*') AS lead,
           translate(local, 'abcdefghijklmnopqrstuvwxyz0123456789', 'aaaaaaaaaaaaaaaaaaaaaaaaaa9999999999') AS shape
    FROM email
),
runs AS MATERIALIZED (
    SELECT *, regexp_replace(regexp_replace(shape, 'a+', 'a', 'g'), '9+', '9', 'g') AS run,
           concat_ws('', CASE WHEN shape LIKE '%a%' THEN 'a' END, CASE WHEN shape LIKE '%9%' THEN '9' END,
                     replace(replace(shape, 'a', ''), '9', '')) AS classes
    FROM shaped
),
restarts AS MATERIALIZED (  -- circular mean time of day of each account's restarts (silences up to the
    -- hour's restart maximum: restart_gaps keeps longer ones for pipelines.sybil.outages)
    SELECT f.account_id,
           (degrees(atan2(avg(sin(radians(m / 4.0))), avg(cos(radians(m / 4.0))))) * 4.0 + 1440) % 1440 AS minute
    FROM (SELECT r.device_id, extract('hour' FROM r.gap_start) * 60 + extract('minute' FROM r.gap_start) AS m
          FROM restart_gaps r LEFT JOIN uptime_cadence c USING (epoch)
          WHERE r.epoch > hours_back($epoch, $window) AND r.epoch <= $epoch
            AND r.gap_minutes <= coalesce(c.restart_max_minutes, r.gap_minutes)) g
    JOIN (SELECT DISTINCT device_id, account_id FROM device_features
          WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch) f
      USING (device_id)
    GROUP BY f.account_id
),
repeated AS (  -- values an account can reach more than once (several devices, funders, referrals)
    SELECT account_id, 'funding' AS kind, w AS value FROM hop1
    UNION ALL  -- an account's own wallet where it funds another account's stake: funder and funded are tied
    SELECT a.account_id, 'funding', a.wallet FROM acc a
    WHERE a.wallet IN (SELECT w FROM hop1 UNION ALL SELECT w FROM hop2 UNION ALL SELECT w FROM hop3)
    UNION ALL SELECT account_id, 'funding', w FROM hop2
    UNION ALL SELECT account_id, 'funding', w FROM hop3
    UNION ALL
    SELECT account_id, 'hw_fingerprint', hw_fingerprint FROM hw
    UNION ALL
    SELECT account_id, 'host', host_fingerprint FROM hw
    UNION ALL
    SELECT account_id, 'gpu', gpu_uuid FROM hw WHERE gpu_uuid IS NOT NULL
    UNION ALL
    SELECT account_id, {TURN_KIND}, value FROM timeshare_rotas WHERE epoch = $epoch
    UNION ALL
    SELECT account_id, 'ip', ip FROM hw
    UNION ALL
    SELECT account_id, 'subnet', regexp_extract(ip, '^(\d+\.\d+\.\d+)\.\d+$', 1) FROM hw WHERE regexp_matches(ip, '^\d+\.\d+\.\d+\.\d+$')
    UNION ALL
    SELECT account_id, 'referral', referrer FROM acc WHERE referrer IS NOT NULL
    UNION ALL
    SELECT referrer, 'referral', referrer FROM acc WHERE referrer IS NOT NULL
    UNION ALL
    SELECT account_id, 'staked', amount || '|' || width || '|' || half || '|' || CAST(floor((minute + half * width / 2) / width) AS BIGINT)
    FROM bursts CROSS JOIN (VALUES (15), (60)) AS w(width) CROSS JOIN (VALUES (0), (1)) AS o(half)
),
once AS (  -- one row per account and value by construction (one latest account row each): no DISTINCT needed
    SELECT account_id, 'email' AS kind, mailbox(email) AS value FROM acc WHERE email LIKE '%@%'  -- contract.mailbox
    UNION ALL
    SELECT account_id, 'wallet', wallet FROM acc
    UNION ALL
    SELECT account_id, 'email_pattern', 'p1|' || domain || '|' || lead || '|' || substr(shape, length(lead) + 1)
    FROM runs WHERE length(local) - length(lead) >= 3
    UNION ALL SELECT account_id, 'email_pattern', 'p2|' || domain || '|' || shape FROM runs
    UNION ALL SELECT account_id, 'email_pattern', 'p3|' || domain || '|' || run || '|' || length(local) FROM runs
    UNION ALL SELECT account_id, 'email_pattern', 'p4|' || run || '|' || length(local) FROM runs
    UNION ALL SELECT account_id, 'email_pattern', 'p5|' || domain || '|' || length(local) || '|' || classes FROM runs
    UNION ALL SELECT account_id, 'email_pattern', '{DISPOSABLE_SHAPE}' FROM runs WHERE domain IN (SELECT domain FROM disposable_domains)
    UNION ALL
    SELECT account_id, 'signup_ip', ip_site(signup_ip) FROM acc
    UNION ALL
    SELECT account_id, 'created', width || '|' || CAST(floor(epoch(created_at) / 60 / width) AS BIGINT)
    FROM acc CROSS JOIN (VALUES (15), (60)) AS w(width) WHERE created_at IS NOT NULL
    UNION ALL
    SELECT account_id, 'restart', width || '|' || half || '|' || CAST(floor(((minute + half * width / 2) % 1440) / width) AS INTEGER)
    FROM restarts CROSS JOIN (VALUES (30), (60), (120)) AS w(width) CROSS JOIN (VALUES (0), (1)) AS o(half)
)
SELECT DISTINCT account_id, kind, value FROM repeated WHERE account_id IS NOT NULL AND value IS NOT NULL AND value <> ''
UNION ALL
SELECT account_id, kind, value FROM once WHERE account_id IS NOT NULL AND value IS NOT NULL AND value <> ''
""".replace("{TURN_KIND}", "CASE kind " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in TURN_KIND_OF.items()) + " END").replace(
    "{DISPOSABLE_SHAPE}", DISPOSABLE_SHAPE
)

PAIRS_SQL = """
CREATE OR REPLACE TEMP TABLE account_shared AS  -- values held by 2..max_n accounts, with their base-rate weight
WITH k AS (SELECT * FROM (VALUES {kinds}) AS k(kind, strength, max_n)),
totals AS (SELECT kind, count(DISTINCT account_id) AS total FROM account_attrs GROUP BY kind),
groups AS (SELECT kind, value, count(*) AS n FROM account_attrs GROUP BY kind, value)
SELECT a.account_id, a.kind, a.value, g.n,
       k.strength * ln(greatest(t.total, 2) / g.n) / ln(greatest(t.total, 2)) AS weight
FROM account_attrs a JOIN groups g USING (kind, value) JOIN k USING (kind) JOIN totals t USING (kind)
WHERE g.n BETWEEN 2 AND k.max_n;

CREATE OR REPLACE TEMP TABLE account_links AS
WITH blocked AS (  -- large groups split into blocks of at most $block holders (a per-value hash order)
    SELECT account_id, kind, value,
           CASE WHEN n <= $block THEN 0
                ELSE (row_number() OVER (PARTITION BY kind, value ORDER BY hash(account_id || kind || value), account_id))
                     % CAST(ceil(n / $block) AS BIGINT) END AS part
    FROM account_shared WHERE kind NOT IN ({weak})
)
SELECT x.kind, x.value, x.account_id AS a, y.account_id AS b
FROM blocked x JOIN blocked y ON x.kind = y.kind AND x.value = y.value AND x.part = y.part AND x.account_id < y.account_id;

CREATE OR REPLACE TEMP TABLE account_candidates AS SELECT DISTINCT a, b FROM account_links;

CREATE OR REPLACE TEMP TABLE account_pairs AS
WITH first_values AS MATERIALIZED (  -- the first account's values, then those the second holds too. This
    -- order is the plan: inside the epoch's transaction the planner paired the holders of every
    -- value first (every pair of up to max_n holders), 8 times slower at a million devices
    SELECT c.a, c.b, x.kind, x.value, x.n, x.weight
    FROM account_candidates c JOIN account_shared x ON x.account_id = c.a
)
SELECT f.a, f.b, f.kind, f.value, f.n, f.weight     -- every value the pair shares
FROM first_values f
JOIN account_shared y ON y.account_id = f.b AND y.kind = f.kind AND y.value = f.value;

CREATE OR REPLACE TEMP TABLE account_support AS
WITH total AS (SELECT count(DISTINCT account_id) AS accounts FROM account_attrs),
co AS (  -- for every large value, how its holders' other operator values overlap it
    SELECT v.kind, v.value, v.n, u.kind AS other_kind, u.value AS other_value, u.n AS other_n, count(*) AS overlap
    FROM account_shared v JOIN account_shared u ON u.account_id = v.account_id AND u.kind IN ({strong})
     AND {source_u} <> {source_v}  -- a mailbox's own shapes cannot corroborate it
    WHERE v.n > $hub_min
    GROUP BY ALL
),
scored AS (
    SELECT c.*, c.overlap * t.accounts / (c.n * c.other_n) AS lift FROM co c, total t WHERE c.overlap >= $min_share * c.n
),
best AS (  -- the co-value covering most of the value's holders among those far above chance
    SELECT kind, value, first(struct_pack(other_kind, other_value, lift)
                              ORDER BY overlap DESC, lift DESC, other_kind, other_value) AS s  -- ties: stable
    FROM scored WHERE lift >= $min_lift GROUP BY kind, value
)
SELECT g.kind, g.value, g.n, b.s.other_kind AS support_kind, b.s.other_value AS support_value, b.s.lift AS lift,
       (SELECT max(lift) FROM scored x WHERE x.kind = g.kind AND x.value = g.value) AS best_lift
FROM (SELECT kind, value, any_value(n) AS n FROM account_shared WHERE n > $hub_min GROUP BY kind, value) g
LEFT JOIN best b USING (kind, value);

CREATE OR REPLACE TEMP TABLE account_small AS  -- operator values small enough to tie holders of a large one
SELECT account_id, kind, value, n FROM account_shared WHERE kind IN ({strong}) AND n <= $cohesion_max_n;

CREATE OR REPLACE TEMP TABLE account_nested AS  -- small operator values of other kinds held by 2+ holders of a large value
WITH nested AS (
    SELECT l.kind, l.value, l.account_id, s.kind AS other_kind, s.value AS other_value
    FROM account_shared l JOIN account_small s ON s.account_id = l.account_id AND s.kind <> l.kind
    WHERE l.n > $hub_min
)
SELECT *, count(*) OVER (PARTITION BY kind, value, other_kind, other_value) AS m FROM nested;

CREATE OR REPLACE TEMP TABLE account_covered AS  -- holders tied to two other holders through such values
SELECT x.kind, x.value, x.account_id
FROM account_nested x JOIN account_nested y USING (kind, value, other_kind, other_value)
WHERE x.m >= 2 AND y.account_id <> x.account_id
GROUP BY ALL HAVING count(DISTINCT y.account_id) >= 2;

CREATE OR REPLACE TEMP TABLE account_cohesion AS  -- ties among a value's holders against what random accounts give
WITH total AS (SELECT count(DISTINCT account_id) AS accounts FROM account_attrs),
reach AS (SELECT account_id, kind, sum(n - 1) AS co FROM account_small GROUP BY ALL),
reach_total AS (SELECT account_id, sum(co) AS co FROM reach GROUP BY ALL),
chance AS (  -- holder i has co-holders through small values of other kinds, each among the value's other
             -- holders with probability (n - 1) / (N - 1) were the holders random accounts of this network
    SELECT l.kind, l.value, any_value(l.n) AS n,
           sum((coalesce(rt.co, 0) - coalesce(r.co, 0)) * (l.n - 1) / greatest(t.accounts - 1, 1)) AS expected_ties
    FROM account_shared l CROSS JOIN total t
    LEFT JOIN reach_total rt ON rt.account_id = l.account_id
    LEFT JOIN reach r ON r.account_id = l.account_id AND r.kind = l.kind
    WHERE l.n > $hub_min
    GROUP BY l.kind, l.value
),
ties AS (SELECT kind, value, sum(m - 1) AS ties FROM account_nested GROUP BY ALL),
covered AS (SELECT kind, value, count(*) AS covered FROM account_covered GROUP BY ALL)
SELECT c.kind, c.value, c.n, c.expected_ties, coalesce(t.ties, 0) AS ties, coalesce(v.covered, 0) AS covered,
       round(coalesce(t.ties, 0) / greatest(c.expected_ties, 1e-9), 9) AS lift
FROM chance c LEFT JOIN ties t USING (kind, value) LEFT JOIN covered v USING (kind, value)
"""


EDGES_SQL = """
CREATE OR REPLACE TEMP TABLE account_hubs AS
SELECT kind, value, n, best_lift AS lift FROM account_support ANTI JOIN cohesion_pass USING (kind, value)
WHERE support_value IS NULL;

CREATE OR REPLACE TEMP TABLE account_edges AS
WITH support_holders AS (  -- for each large value, the accounts holding its supporting co-value (one group)
    SELECT s.kind, s.value, h.account_id, '' AS grp FROM account_support s
    JOIN account_attrs h ON h.kind = s.support_kind AND h.value = s.support_value
    UNION  -- or, for a cohesive value, the holders tied to other holders, by the group their ties form
    SELECT kind, value, account_id, grp FROM account_covered JOIN cohesion_groups USING (kind, value, account_id)
),
corroborated AS (  -- a large value links two accounts only if both are in one of its groups
    SELECT DISTINCT x.* FROM account_pairs x
    JOIN support_holders ha ON ha.kind = x.kind AND ha.value = x.value AND ha.account_id = x.a
    SEMI JOIN support_holders hb ON hb.kind = x.kind AND hb.value = x.value AND hb.account_id = x.b AND hb.grp = ha.grp
),
usable AS (  -- grouped: an operator value shown to mark a group (supported or cohesive), not a coincidence
    SELECT *, false AS grouped FROM account_pairs ANTI JOIN account_support USING (kind, value)  -- small values: face value
    UNION ALL SELECT *, kind IN ({strong}) AS grouped FROM corroborated
),
p AS (
    -- the rarest value per kind, ties (granularities of one shape) broken by value so runs agree
    SELECT a, b, kind, max(weight) AS weight, first(value ORDER BY weight DESC, value) AS value, min(n) AS n,
           bool_or(grouped) AS grouped
    FROM usable GROUP BY a, b, kind
),
kept AS (
    SELECT a, b FROM p GROUP BY a, b
    HAVING round(sum(weight), 9) >= $min_weight OR count(*) FILTER (kind IN ({strong})) >= $min_strong OR bool_or(grouped)
)
SELECT p.a, p.b, round(sum(p.weight), 9) AS weight, count(*) FILTER (p.kind IN ({strong})) AS strong_kinds,
       list(p.kind ORDER BY p.kind) AS kinds,
       list(struct_pack(kind := p.kind, value := p.value, n := p.n, weight := round(p.weight, 3)) ORDER BY p.weight DESC, p.kind) AS links
FROM p JOIN kept USING (a, b) GROUP BY p.a, p.b;

CREATE OR REPLACE TEMP TABLE account_graph_stats AS
SELECT (SELECT count(*) FROM account_links) AS block_pairs, (SELECT count(*) FROM account_candidates) AS candidates,
       (SELECT count(*) FROM account_hubs) AS hubs, (SELECT count(*) FROM account_edges) AS edges;

DROP TABLE account_pairs;
DROP TABLE account_candidates;
DROP TABLE account_links;
DROP TABLE account_support;
DROP TABLE account_shared;
DROP TABLE account_covered;
DROP TABLE account_nested;
DROP TABLE account_small;

"""


def _run_script(con: duckdb.DuckDBPyConnection, script: str, params: dict[str, object]) -> None:
    for sql in script.split(";"):
        if sql.strip():
            con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})


def _cohesion_pass(con: duckdb.DuckDBPyConnection, min_share: float, min_lift: float) -> None:
    """Temp table ``cohesion_pass`` (kind, value, lift): large values at least ``min_share`` of whose
    holders are tied to other holders by small operator values, with ``min_lift`` times the ties
    random accounts of this network would have; and ``cohesion_groups`` (kind, value, account_id,
    grp): those tied holders, labelled by the group their ties connect them into."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cohesion_pass AS SELECT kind, value, lift FROM account_cohesion "
        "WHERE covered >= $share * n AND lift >= $lift",
        {"share": min_share, "lift": min_lift},
    )
    _cohesion_groups(con)


def _cohesion_groups(con: duckdb.DuckDBPyConnection) -> None:
    """Connected groups of a cohesive value's holders, by their small-value ties (label propagation
    in SQL: each holder takes the least label among itself and the holders it is tied to, until
    nothing changes; labels only fall, so it ends within the groups' diameter).

    Two rings that restart in the same two-hour bin share that restart value, and each ring's
    holders are tied among themselves: the value is cohesive, but it links holders only within
    one group, not the two rings to each other (they were merged into one community before)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cohesion_ties AS
        SELECT DISTINCT x.kind, x.value, x.account_id AS a, y.account_id AS b
        FROM account_nested x JOIN account_nested y USING (kind, value, other_kind, other_value)
        SEMI JOIN cohesion_pass c ON c.kind = x.kind AND c.value = x.value
        WHERE x.account_id <> y.account_id
    """)  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cohesion_groups AS SELECT DISTINCT kind, value, a AS account_id, a AS grp FROM cohesion_ties"
    )
    while True:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE cohesion_next AS
            SELECT l.kind, l.value, l.account_id, least(l.grp, coalesce(min(n.grp), l.grp)) AS grp
            FROM cohesion_groups l
            LEFT JOIN cohesion_ties t ON t.kind = l.kind AND t.value = l.value AND t.a = l.account_id
            LEFT JOIN cohesion_groups n ON n.kind = t.kind AND n.value = t.value AND n.account_id = t.b
            GROUP BY l.kind, l.value, l.account_id, l.grp
        """)  # fmt: skip
        changed = con.execute(
            "SELECT count(*) FROM cohesion_next n JOIN cohesion_groups g USING (kind, value, account_id) WHERE n.grp <> g.grp"
        ).fetchall()[0][0]
        con.execute("CREATE OR REPLACE TEMP TABLE cohesion_groups AS SELECT * FROM cohesion_next")
        if not changed:
            break
    con.execute("DROP TABLE cohesion_next")
    con.execute("DROP TABLE cohesion_ties")


def _register_disposable_domains(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``disposable_domains``: the ``disposable-email-domains`` package's list, once per connection."""
    known = "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'disposable_domains' AND temporary"
    if con.execute(known).fetchall()[0][0]:
        return
    from disposable_email_domains import blocklist

    con.execute("CREATE TEMP TABLE disposable_domains AS SELECT unnest($d::VARCHAR[]) AS domain", {"d": sorted(blocklist)})


def account_attributes(con: duckdb.DuckDBPyConnection, epoch: str, window_hours: int = 24) -> None:
    """Temp table ``account_attrs``: every account's attribute values (``ATTRS_SQL``) as of the epoch."""
    _register_disposable_domains(con)
    con.execute(ATTRS_SQL, {"epoch": epoch, "window": window_hours})


def build_account_graph(
    con: duckdb.DuckDBPyConnection, epoch: str, window_hours: int = 24, min_weight: float = 0.3, min_strong: int = 2,
    block: int = 32, hub_min: int = 10, min_share: float = 0.5, min_lift: float = 3.0,
    cohesion_max_n: int = 30,
) -> int:  # fmt: skip
    """Temp tables ``account_attrs``, ``account_hubs``, ``cohesion_pass``, ``cohesion_groups``, ``account_edges`` and
    ``account_graph_stats`` (pairs made in blocks, candidate pairs, hubs, edges) for the epoch;
    returns the edge count.

    A pair is kept when its links add up to ``min_weight`` or it shares ``min_strong`` operator
    kinds (a large ring's funder is shared by so many accounts that each pair's weight is
    small, but its members also share a mailbox shape or a restart time)."""
    if block < 2 or hub_min < 2 or not 0 < min_share <= 1 or min_lift < 1:
        raise ValueError(f"sybil graph: block ({block}) and hub_min ({hub_min}) must be >= 2, min_share in (0, 1], min_lift >= 1")
    account_attributes(con, epoch, window_hours)
    kinds = ", ".join(f"('{k}', {s}, {n})" for k, (s, n) in KINDS.items())
    strong = ", ".join(f"'{k}'" for k in STRONG_KINDS)
    weak = ", ".join(f"'{k}'" for k in WEAK_KINDS)
    source = {
        c: "CASE " + " ".join(f"WHEN {c}.kind = '{k}' THEN '{v}'" for k, v in SOURCES.items()) + f" ELSE {c}.kind END"
        for c in "uv"
    }
    params = {"block": block, "hub_min": hub_min, "min_share": min_share, "min_lift": min_lift, "min_weight": min_weight,
              "min_strong": min_strong, "cohesion_max_n": cohesion_max_n}  # fmt: skip
    _run_script(con, PAIRS_SQL.format(kinds=kinds, strong=strong, weak=weak, source_u=source["u"], source_v=source["v"]), params)
    _cohesion_pass(con, min_share, min_lift)
    _run_script(con, EDGES_SQL.format(kinds=kinds, strong=strong, weak=weak), params)
    return int(con.execute("SELECT count(*) FROM account_edges").fetchall()[0][0])
