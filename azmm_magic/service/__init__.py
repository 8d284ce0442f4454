"""service layer of azmm_magic."""
