"""``wash_trading``: owners hiring their own devices to inflate rental hours.

A job is *self-dealing* when its client and the device's owner are one operator: the same
account, the same sybil cluster, a shared funding wallet (or its funder), one mailbox
(``contract.mailbox``: ``wei.le+rent1@`` is ``wei.le@``), a referral between them, or the same
signup IP. Completed self-dealing jobs inflate rental time;
``suspect_jobs`` of them in the window suspect the device and ``confirm_jobs`` establish it.
A job of ``max_job_hours`` or longer proves it only on a tie of money or identity (the same
account, one sybil cluster, a shared funding wallet up to two hops back, one mailbox: a fifth
network written by others had owners rent their own cards for 80-100 minutes at a time through
sock-puppet clients on ``+tag`` addresses of their own mailbox): colleagues behind a
small office's address, or a friend who referred the owner, may rent each other's cards for long
runs in earnest, while an operator who launders the client's funding through a hop wallet and
rents for two hours at a time is still one purse (an independently written network's laundered
wash trading, 110-minute jobs, went unflagged while only jobs under an hour counted). On the
signup address alone a long job suspects and never proves (``proof_jobs`` in the details): a
sixth network's operators rented their own cards 2 and 4 h at a time through clients signed up
from their own address, and no honest owner of five networks written by others was rented by a
client of its own signup address; a referral alone does not count for a long job.

Honest model: renters are people too. A regular client runs short jobs on the same good card
all day, and client and owner alike withdrew their tokens from an exchange whose hot wallet
funds thousands of unrelated accounts, or signed up behind one campus or carrier NAT. A funding
wallet or signup address (an IPv6 /64 as one site) shared by more than ``max_shared_accounts``
accounts is such a hub and ties nobody; an operator's own funder reaches a handful of accounts,
and a ring that funds more from one wallet is a sybil cluster, which is a tie of its own. Before
this rule, a network whose one renter and ten owners had withdrawn from the same exchange had
those ten honest devices rejected and slashed.

*Overpaid rentals* need no tie: a puppet with a mailbox, wallet and address of its own still pays
its owner's card with the owner's money, so the price does not matter to it, and three networks
written by others had their wash traders pay 1.5-4.5x the going rate (honest renters:
0.83-1.35x). Honest prices spread too (owners set them, spot and on-demand renters, premium
cards, minimum charges on short jobs), so a model's going rate is the median renter's over
``price_window_hours`` (each renter one vote), from jobs of ``min_priced_minutes`` or longer; a
shorter job is priced per hour billed, an hour at least (no market bills a short job more than
an hour: a twentieth network's wash traders paid 35-95 USD for 4-20 minutes on an RTX 4090 that
rents at 0.35 USD an hour, and went unflagged while short jobs were not priced), a job is
overpaid at ``premium`` x the going rate and beyond ``spread_z`` robust standard deviations of
the network's own spread, and its renter pays above that bar on ``overpaid_share`` of its
priced rentals. ``suspect_jobs`` such jobs hold the device in probation, never more: a price is
suspicion, not proof.

*Swapped rentals*: two operators hire each other's cards, each through clients paid from its own
money, so no job's client is tied to its device's owner (a twenty-third network written by
others: 12 devices, held only while a price showed). A job hired by a client of another
owner's purse (an own funding source in common, as above), while clients of this owner's purse
hired that owner's devices in the window, counts; ``suspect_jobs`` such jobs hold the device in
probation, never more. Honest model: renters and owners meet at random, and a renter who is
paid from another owner's money is that owner's puppet or partner.
"""

from __future__ import annotations

import polars as pl

from detectors.base import Detector, Evidence


class WashTrading(Detector):
    name = "wash_trading"
    fraud_type = "wash_trading"
    needs = ("sybil",)  # reads the epoch's sybil_clusters

    def __init__(self, threshold: float = 0.5, window_hours: int = 24, max_job_hours: float = 1.0,
                 suspect_jobs: int = 2, confirm_jobs: int = 4, max_shared_accounts: int = 10,
                 price_window_hours: int = 168, min_priced_minutes: float = 30.0, min_renters: int = 5,
                 premium: float = 1.5, spread_z: float = 4.0, overpaid_share: float = 0.8):  # fmt: skip
        super().__init__(threshold)
        self.window_hours = window_hours
        self.max_job_hours = max_job_hours
        self.suspect_jobs = suspect_jobs
        self.confirm_jobs = confirm_jobs
        self.max_shared_accounts = max_shared_accounts
        self.price_window_hours = price_window_hours
        self.min_priced_minutes = min_priced_minutes
        self.min_renters = min_renters
        self.premium = premium
        self.spread_z = spread_z
        self.overpaid_share = overpaid_share

    def score(self, evidence: Evidence) -> pl.DataFrame:
        return evidence.sql(
            """
            WITH acc AS (
                SELECT account_id, arg_max(wallet, _hour) AS wallet, arg_max(signup_ip, _hour) AS signup_ip,
                       arg_max(referrer_account_id, _hour) AS referrer, mailbox(arg_max(email, _hour)) AS mailbox
                FROM accounts WHERE _hour <= $epoch GROUP BY account_id
            ),
            funded AS (SELECT DISTINCT wallet, funder_wallet FROM stake_events WHERE _hour <= $epoch),
            sources AS (  -- the wallets each account's money came from, one and two hops back
                SELECT a.account_id, a.wallet AS source FROM acc a
                UNION SELECT a.account_id, f.funder_wallet FROM acc a JOIN funded f ON f.wallet = a.wallet
                UNION SELECT a.account_id, f2.funder_wallet FROM acc a JOIN funded f ON f.wallet = a.wallet
                      JOIN funded f2 ON f2.wallet = f.funder_wallet
            ),
            own_sources AS (  -- sources held by at most max_shared accounts: an exchange's hot wallet is not one operator
                SELECT account_id, source FROM sources
                WHERE source IN (SELECT source FROM sources GROUP BY source HAVING count(DISTINCT account_id) <= $max_shared)
            ),
            own_sites AS (  -- signup sites (an IPv6 /64 as one) of at most max_shared accounts: a campus NAT is not one operator
                SELECT account_id, ip_site(signup_ip) AS site FROM acc
                WHERE ip_site(signup_ip) IN (SELECT ip_site(signup_ip) FROM acc WHERE signup_ip IS NOT NULL
                                             GROUP BY 1 HAVING count(*) <= $max_shared)
            ),
            owner AS (
                SELECT device_id, arg_max(account_id, epoch) AS owner FROM device_features
                WHERE epoch > hours_back($epoch, $window)
                  AND epoch <= $epoch AND account_id IS NOT NULL GROUP BY device_id
            ),
            jobs_ AS (
                SELECT j.job_id, j.device_id, o.owner, j.client_account_id AS client,
                       date_diff('millisecond', coalesce(j.started_at, j.created_at), j.ended_at) AS ms,
                       ms >= $max_hours * 3600000 AS long_job
                FROM jobs j JOIN owner o USING (device_id)
                WHERE j._hour > hours_back($epoch, $window)
                  AND j._hour <= $epoch AND j.status = 'completed'
            ),
            same_cluster AS (
                SELECT DISTINCT j.job_id FROM jobs_ j
                JOIN sybil_clusters s1 ON s1.epoch = $epoch AND s1.account_id = j.owner
                JOIN sybil_clusters s2 ON s2.epoch = $epoch AND s2.cluster_id = s1.cluster_id AND s2.account_id = j.client
            ),
            purse AS (  -- accounts of one purse: an own source in common (each account with itself, where it has one)
                SELECT DISTINCT a.account_id AS x, b.account_id AS y FROM own_sources a JOIN own_sources b USING (source)
            ),
            same_source AS (SELECT DISTINCT j.job_id FROM jobs_ j JOIN purse p ON p.x = j.owner AND p.y = j.client),
            judged AS (
                SELECT j.*,
                    concat_ws(', ',
                      CASE WHEN j.client = j.owner THEN 'the same account' END,
                      CASE WHEN c.job_id IS NOT NULL THEN 'one sybil cluster' END,
                      CASE WHEN f.job_id IS NOT NULL THEN 'a shared funding wallet' END,
                      CASE WHEN co.mailbox = oo.mailbox THEN 'one mailbox' END,
                      CASE WHEN co.referrer = j.owner OR oo.referrer = j.client THEN 'a referral' END,
                      CASE WHEN cs.site = os.site THEN 'the same signup IP' END) AS ties,
                    -- one purse or one identity: what a long job needs (colleagues behind one small office's NAT, or a
                    -- friend who referred, rent each other's cards for long runs in earnest)
                    j.client = j.owner OR c.job_id IS NOT NULL OR f.job_id IS NOT NULL OR coalesce(co.mailbox = oo.mailbox, false)
                      AS money_tie,
                    coalesce(cs.site = os.site, false) AS site_tie
                FROM jobs_ j
                LEFT JOIN same_cluster c USING (job_id)
                LEFT JOIN same_source f USING (job_id)
                LEFT JOIN acc oo ON oo.account_id = j.owner LEFT JOIN acc co ON co.account_id = j.client
                LEFT JOIN own_sites os ON os.account_id = j.owner LEFT JOIN own_sites cs ON cs.account_id = j.client
            ),
            per_device AS (
                -- whole milliseconds summed, then hours: a sum of float hours depends on the order rows arrive
                -- in, and its rounding flipped between runs (0.52 / 0.53); whole seconds dropped each job's
                -- fraction, which moved totals across a rounding edge (1.5 -> 1.4); the client shown is the first
                -- a long job on the signup address alone suspects (two accounts behind one small NAT) and never proves
                SELECT device_id, any_value(owner) AS owner, count(*) AS jobs, sum(ms) / 3600000.0 AS hours,
                       count(*) FILTER (long_job) AS long_jobs, count(*) FILTER (NOT long_job OR money_tie) AS proof_jobs,
                       min(ties) AS ties, min(client) AS client
                FROM judged WHERE ties <> '' AND (NOT long_job OR money_tie OR site_tie) GROUP BY device_id
            ),
            tied AS (
                SELECT p.device_id, p.owner AS account_id,
                       CASE WHEN p.proof_jobs >= $confirm THEN 1.0 ELSE 0.75 END AS score,
                       CASE WHEN p.proof_jobs >= $confirm THEN 'reject' ELSE 'probation' END AS action,
                       format('{} completed jobs ({} of them {:g} h or longer; {:.1f} rental hours) in the last {} hours hired by '
                              'account {} tied to the owner by {}{}', p.jobs, p.long_jobs, $max_hours, p.hours, $window, p.client,
                              p.ties, CASE WHEN p.proof_jobs < $confirm AND p.jobs >= $confirm
                                           THEN format(' ({} of them long on the signup address alone: suspicion, not proof)',
                                                       p.jobs - p.proof_jobs) ELSE '' END)
                         AS reason,
                       json_object('jobs', p.jobs, 'long_jobs', p.long_jobs, 'proof_jobs', p.proof_jobs,
                                   'hours', round(p.hours, 2), 'client', p.client, 'ties', p.ties) AS details
                FROM per_device p WHERE p.jobs >= $suspect
            ),
            claimed AS (  -- the model each device seen in the window claims (the price a renter expects; a week of
                -- features would cost a scan of a week of devices every hour)
                SELECT device_id, arg_max(catalogue_model, epoch) AS model FROM device_features
                WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch AND catalogue_model IS NOT NULL
                GROUP BY device_id
            ),
            priced AS (  -- completed jobs on a catalogue model, at their hourly rate; a job shorter than min_priced_minutes
                -- (a minimum charge makes a few minutes' job look dear) at what it paid per hour billed, an hour at least:
                -- no market bills a short job more than an hour, so that bounds its rate from below (never a going rate)
                SELECT job_id, device_id, client, _hour, model, ms < $min_priced_minutes * 60000 AS short,
                       CAST(paid_usd AS DOUBLE) * 3600000
                         / CASE WHEN ms < $min_priced_minutes * 60000 THEN greatest(ms, 3600000) ELSE ms END AS rate
                FROM (SELECT j.*, j.client_account_id AS client, c.model,
                             date_diff('millisecond', coalesce(j.started_at, j.created_at), j.ended_at) AS ms
                      FROM jobs j JOIN claimed c USING (device_id)
                      WHERE j._hour > hours_back($epoch, $price_window) AND j._hour <= $epoch AND j.status = 'completed')
                WHERE ms > 0
            ),
            renter_rate AS (SELECT model, client, median(rate) AS rate FROM priced WHERE NOT short GROUP BY ALL),
            going AS (  -- a model's going rate: the median renter's (each renter one vote, so one operator's many jobs
                -- do not set it), and how far honest renters stray from it (median absolute log deviation)
                SELECT r.model, g.going, g.renters, median(abs(ln(r.rate / g.going))) AS spread
                FROM renter_rate r
                JOIN (SELECT model, median(rate) AS going, count(*) AS renters FROM renter_rate GROUP BY model
                      HAVING count(*) >= $min_renters AND median(rate) > 0) g USING (model)
                WHERE r.rate > 0 GROUP BY ALL
            ),
            priced_judged AS (
                SELECT p.*, g.going, g.renters, p.rate / g.going AS ratio,
                       greatest($premium, exp($spread_z * 1.4826 * g.spread)) AS bar, ratio >= bar AS over
                FROM priced p JOIN going g USING (model)
            ),
            overpayers AS (  -- renters who pay above the bar on most of their priced rentals (a renter who pays one
                -- premium card's price and the going rate elsewhere is a customer of that card); a short job counts only
                -- when it is above the bar (its hourly rate is a lower bound: below the bar, it says nothing)
                SELECT client, count(*) AS rentals, avg(CAST(over AS DOUBLE)) AS share FROM priced_judged
                WHERE over OR NOT short
                GROUP BY client HAVING count(*) >= 2 AND avg(CAST(over AS DOUBLE)) >= $overpaid_share
            ),
            overpaid AS (
                SELECT j.device_id, any_value(o.owner) AS owner, count(*) AS jobs, count(*) FILTER (j.short) AS short_jobs,
                       min(j.ratio) AS lo, max(j.ratio) AS hi,
                       any_value(j.model) AS model, any_value(j.going) AS going, any_value(j.renters) AS renters,
                       any_value(j.bar) AS bar, min(j.client) AS client, count(DISTINCT j.client) AS clients
                FROM priced_judged j JOIN overpayers USING (client) JOIN owner o USING (device_id)
                WHERE j.over AND j._hour > hours_back($epoch, $window)
                GROUP BY j.device_id HAVING count(*) >= $suspect
            ),
            swapped AS (  -- a job hired by a client of another owner's purse, while a client of this owner's purse hired
                -- that owner's devices in the window: two operators renting each other's cards
                SELECT j1.device_id, any_value(j1.owner) AS owner, count(DISTINCT j1.job_id) AS jobs,
                       min(p1.x) AS other_owner, min(j1.client) AS client
                FROM jobs_ j1
                JOIN purse p1 ON p1.y = j1.client AND p1.x <> p1.y AND p1.x <> j1.owner
                JOIN jobs_ j2 ON j2.owner = p1.x AND j2.client <> j1.client
                JOIN purse p2 ON p2.y = j2.client AND p2.x <> p2.y AND p2.x = j1.owner
                GROUP BY j1.device_id HAVING count(DISTINCT j1.job_id) >= $suspect
            ),
            swapped_found AS (
                SELECT device_id, owner AS account_id,
                       format('{} completed jobs in the last {} hours hired by account {}, whose money is account {}''s, while '
                              'clients paid from this owner''s money hired {}''s devices: two operators renting each other''s '
                              'cards (suspicion, not proof)', jobs, $window, client, other_owner, other_owner) AS reason,
                       json_object('swapped_jobs', jobs, 'swap_client', client, 'swap_owner', other_owner) AS details
                FROM swapped
            ),
            overpaid_found AS (
                SELECT device_id, owner AS account_id,
                       format('{} completed jobs in the last {} hours paid {:.1f}-{:.1f}x the going rate for {} ({:.2f} USD/h, the '
                              'median of {} renters; the bar here {:.2f}x) by {} renter(s) who pay above it on most of their '
                              'rentals (account {}){}: overpaying one''s own card buys it rental hours (suspicion, not proof)',
                              jobs, $window, lo, hi, model, going, renters, bar, clients, client,
                              CASE WHEN short_jobs > 0 THEN format('; {} of them under {} minutes, priced per hour as if all '
                                   'they paid were an hour''s minimum charge', short_jobs, $short_label) ELSE '' END) AS reason,
                       json_object('overpaid_jobs', jobs, 'overpaid_short_jobs', short_jobs,
                                   'price_ratio', [round(lo, 2), round(hi, 2)], 'model', model,
                                   'going_usd_per_hour', round(going, 4), 'renters', renters, 'price_bar', round(bar, 2),
                                   'overpaying_client', client) AS details
                FROM overpaid
            )
            SELECT coalesce(t.device_id, o.device_id) AS device_id, coalesce(t.account_id, o.account_id) AS account_id,
                   coalesce(t.score, 0.75) AS score, coalesce(t.action, 'probation') AS action,
                   concat_ws('; ', t.reason, o.reason) AS reason,
                   CAST(json_merge_patch(coalesce(t.details, '{}'::JSON), coalesce(o.details, '{}'::JSON)) AS VARCHAR) AS details
            FROM tied t FULL JOIN (
                SELECT coalesce(o.device_id, w.device_id) AS device_id, coalesce(o.account_id, w.account_id) AS account_id,
                       concat_ws('; ', o.reason, w.reason) AS reason,
                       json_merge_patch(coalesce(o.details, '{}'::JSON), coalesce(w.details, '{}'::JSON)) AS details
                FROM overpaid_found o FULL JOIN swapped_found w USING (device_id)
            ) o USING (device_id)
            ORDER BY device_id
            """,
            window=self.window_hours,
            max_hours=self.max_job_hours,
            suspect=self.suspect_jobs,
            confirm=self.confirm_jobs,
            max_shared=self.max_shared_accounts,
            price_window=self.price_window_hours,
            min_priced_minutes=self.min_priced_minutes,
            short_label=f"{self.min_priced_minutes:g}",
            min_renters=self.min_renters,
            premium=self.premium,
            spread_z=self.spread_z,
            overpaid_share=self.overpaid_share,
        )
