"""The admin web pages under /admin: server-rendered (Jinja2), German and English, no JavaScript needed."""
