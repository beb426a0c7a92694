"""Ranking service: leaderboards of neutralised kilograms (docs/contract.md §3 step 4, §5).

The database holds one contribution per order and is the truth; Redis sorted sets are a
cache derived from it (``flask ranking rebuild`` recomputes them, ``ranking.reconcile``
repairs differences).
"""
