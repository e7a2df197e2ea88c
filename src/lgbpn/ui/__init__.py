"""`lgbpn ui`: a local web page to denoise photos and compare them before and after (needs the `ui` extra)."""
