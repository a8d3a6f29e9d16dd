"""Writes of the referrals app, one module per sub-domain (STYLE.md §2)."""
