"""store layer of azmm_magic."""
