"""features layer of azmm_magic."""
