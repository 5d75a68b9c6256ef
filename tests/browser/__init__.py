"""Browser tests: Playwright driving Debian chromium against a live server (see conftest.py)."""
