"""The test project's settings: one SQLite, one MariaDB and (with ``DJ_TEST_POSTGRESQL_URL``) one
PostgreSQL database, a task backend on each.

Database names come from the environment, so that the daemon, another
process, opens the very databases the tests set up (``conftest.django_env``).
Django's MySQL backend wants mysqlclient, which needs a C toolchain and the
MariaDB headers; PyMySQL, already installed for dj-daemon, stands in for it.
"""
import os

import pymysql
from sqlalchemy.engine import make_url

pymysql.version_info = (2, 2, 1, "final", 0)
pymysql.install_as_MySQLdb()

SECRET_KEY = "dj-daemon tests"
USE_TZ = True
INSTALLED_APPS = ["tests.django.taskapp"]
LOGGING = {"version": 1, "disable_existing_loggers": False}  # the daemon's and the web page's loggers must survive it

SQLITE = os.environ["DJ_TEST_DJANGO_SQLITE"]
MYSQL_NAME = os.environ["DJ_TEST_DJANGO_MYSQL"]
MYSQL_SERVER = make_url(os.environ.get("DJ_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"))

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": SQLITE, "TEST": {"NAME": SQLITE},
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"}},
    "mysql": {"ENGINE": "django.db.backends.mysql", "NAME": MYSQL_NAME,
              "TEST": {"NAME": MYSQL_NAME, "DEPENDENCIES": []},  # set up alone, without "default"
              "HOST": MYSQL_SERVER.host, "PORT": MYSQL_SERVER.port or 3306, "USER": MYSQL_SERVER.username,
              "PASSWORD": MYSQL_SERVER.password or ""},
}

BACKEND = "dj_daemon.contrib.django.DelayedJobBackend"
FAST_RETRIES = {"MAX_ATTEMPTS": 2, "BACKOFF": 0.5}
TASKS = {
    "default": {"BACKEND": BACKEND, "QUEUES": ["default", "mail"], "OPTIONS": FAST_RETRIES},
    "mysql": {"BACKEND": BACKEND, "QUEUES": ["default", "mail"], "OPTIONS": {"DATABASE": "mysql", **FAST_RETRIES}},
    "sqlite_url": {"BACKEND": BACKEND, "OPTIONS": {"URL": f"sqlite:///{SQLITE}"}},
    "mysql_url": {"BACKEND": BACKEND, "OPTIONS": {
        "URL": MYSQL_SERVER.set(database=MYSQL_NAME).render_as_string(hide_password=False)}},
}
if os.environ.get("DJ_TEST_DJANGO_POSTGRESQL"):
    POSTGRESQL_NAME = os.environ["DJ_TEST_DJANGO_POSTGRESQL"]
    POSTGRESQL_SERVER = make_url(os.environ["DJ_TEST_POSTGRESQL_URL"])
    DATABASES["postgresql"] = {
        "ENGINE": "django.db.backends.postgresql", "NAME": POSTGRESQL_NAME,
        "TEST": {"NAME": POSTGRESQL_NAME, "DEPENDENCIES": []}, "HOST": POSTGRESQL_SERVER.host,
        "PORT": POSTGRESQL_SERVER.port or 5432, "USER": POSTGRESQL_SERVER.username,
        "PASSWORD": POSTGRESQL_SERVER.password or ""}
    TASKS["postgresql"] = {"BACKEND": BACKEND, "QUEUES": ["default", "mail"],
                           "OPTIONS": {"DATABASE": "postgresql", **FAST_RETRIES}}
    TASKS["postgresql_url"] = {"BACKEND": BACKEND, "OPTIONS": {
        "URL": POSTGRESQL_SERVER.set(database=POSTGRESQL_NAME).render_as_string(hide_password=False)}}
