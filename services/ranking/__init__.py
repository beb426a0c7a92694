"""Ranking service: leaderboards of neutralised kilograms (SPEC §3 step 5, §4 "Rankings").

The database holds one contribution per order and is the truth; Redis sorted sets are a
cache derived from it (``flask ranking rebuild`` recomputes them, ``ranking.reconcile``
repairs differences).
"""
