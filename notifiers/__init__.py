"""Who receives a notice, and (with later channels) how it reaches them."""
