"""frontends layer of azmm_magic."""
