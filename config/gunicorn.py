"""gunicorn settings (``gunicorn -c python:config.gunicorn``; docker-compose.yml
and scripts/run.sh). The bind address, workers and timeout stay on each
command line.

No personal data in logs (SECURITY.md, issue 7 item 4): the access log
writes the method and the path without the query string (``%(U)s``), never
the request line (``%(r)s``), the query (``%(q)s``) or the referer
(``%(f)s``, a URL with its query), where a searched name or ID number could
sit. tests/test_security_log_leaks.py checks this format.
"""

accesslog = "-"
# remote address, time, method, path (no query), status, bytes, seconds
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(L)s'
