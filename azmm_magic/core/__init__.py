"""core layer of azmm_magic."""
