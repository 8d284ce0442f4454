"""display layer of azmm_magic."""
