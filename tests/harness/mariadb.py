"""A throwaway MariaDB server on a free loopback port, holding MailWizz's real `delivery_server` table.

`MariadbServer().start()` makes a data directory with mariadb-install-db in a temp dir and runs mariadbd on it
with its own socket, pid file and port (as the `mysql` user when we are root); `stop()` stops that process by
its own pid. A server that cannot start raises: the test fails, it never skips.

`create_mailwizz_database(name, prefix)` creates a database and loads the MailWizz 2.1.13 DDL of
`delivery_server` with the tables its foreign keys point to.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pymysql

from tests.harness.servers import free_port, port_open, wait_until

# Copied from MailWizz 2.1.13, apps/common/data/install-sql/schema.sql (`delivery_server`, its constraints, and the
# tables they reference). Kept: the columns, keys and foreign keys of `delivery_server`, and of each referenced
# table only what the reference needs (its own foreign keys to tables this test does not load are left out:
# `customer` -> customer_group/language/parent, `bounce_server` and `tracking_domain` -> customer).
# `{p}` is the table prefix (MailWizz's DB_PREFIX, `mw_` by default).
MAILWIZZ_DELIVERY_SERVER_DDL = """
CREATE TABLE `{p}customer` (
  `customer_id` int(11) NOT NULL AUTO_INCREMENT,
  `customer_uid` char(13) NOT NULL,
  `parent_id` int(11) NULL,
  `group_id` int(11) NULL,
  `language_id` int(11) NULL,
  `first_name` varchar(100) NULL,
  `last_name` varchar(100) NULL,
  `email` varchar(100) NOT NULL,
  `password` char(34) NOT NULL,
  `timezone` varchar(50) NOT NULL,
  `avatar` VARCHAR(255) NULL,
  `hourly_quota` INT NOT NULL DEFAULT '0',
  `removable` enum('yes','no') NOT NULL DEFAULT 'yes',
  `confirmation_key` char(40) NULL,
  `oauth_uid` bigint(20) NULL,
  `oauth_provider` char(10) NULL,
  `status` char(15) NOT NULL DEFAULT 'inactive',
  `birth_date` DATE NULL DEFAULT NULL,
  `phone` VARCHAR(32) NULL,
  `twofa_enabled` ENUM('no','yes') NOT NULL DEFAULT 'no',
  `twofa_secret` VARCHAR(64) NOT NULL DEFAULT '',
  `twofa_timestamp` INT(11) NOT NULL DEFAULT '0',
  `date_added` datetime NOT NULL,
  `last_updated` datetime NOT NULL,
  `last_login` datetime NULL,
  `inactive_at` datetime NULL,
  PRIMARY KEY (`customer_id`),
  UNIQUE KEY `customer_uid_UNIQUE` (`customer_uid`),
  UNIQUE KEY `email_UNIQUE` (`email`),
  KEY `fk_customer_language1_idx` (`language_id`),
  KEY `fk_customer_customer_group1_idx` (`group_id`),
  KEY `fk_customer_parent1_idx` (`parent_id`),
  KEY `oauth` (`oauth_uid`, `oauth_provider`)
) ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci AUTO_INCREMENT=1;

CREATE TABLE `{p}bounce_server` (
  `server_id` int(11) NOT NULL AUTO_INCREMENT,
  `customer_id` INT(11) NULL DEFAULT NULL,
  `name` varchar(255) NULL,
  `hostname` varchar(150) NOT NULL,
  `username` varchar(150) NOT NULL,
  `password` varchar(255) NOT NULL,
  `email` varchar(100) NULL,
  `service` enum('imap','pop3') NOT NULL DEFAULT 'imap',
  `port` int(5) NOT NULL DEFAULT '143',
  `protocol` enum('ssl','tls','notls') NOT NULL DEFAULT 'notls',
  `validate_ssl` enum('yes','no') NOT NULL DEFAULT 'no',
  `locked` enum('yes', 'no') NOT NULL DEFAULT 'no',
  `disable_authenticator` VARCHAR(50) NULL,
  `search_charset` VARCHAR(50) NOT NULL DEFAULT 'UTF-8',
  `delete_all_messages` ENUM('yes','no') NOT NULL DEFAULT 'no',
  `status` char(15) NOT NULL DEFAULT 'active',
  `date_added` datetime NOT NULL,
  `last_updated` datetime NOT NULL,
  PRIMARY KEY (`server_id`),
  KEY `fk_bounce_server_customer1_idx` (`customer_id`),
  KEY `status` (`status`)
) ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci AUTO_INCREMENT=1;

CREATE TABLE `{p}tracking_domain` (
  `domain_id` int(11) NOT NULL AUTO_INCREMENT,
  `customer_id` int(11) DEFAULT NULL,
  `name` varchar(255) NOT NULL,
  `scheme` varchar(50) NOT NULL DEFAULT 'http',
  `date_added` datetime NOT NULL,
  `last_updated` datetime NOT NULL,
  PRIMARY KEY (`domain_id`),
  KEY `fk_tracking_domain_customer1_idx` (`customer_id`)
) ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci AUTO_INCREMENT=1;

CREATE TABLE `{p}delivery_server_warmup_plan` (
    `plan_id` int(11) NOT NULL AUTO_INCREMENT,
    `customer_id` INT(11) NULL DEFAULT NULL,
    `name` varchar(50) NOT NULL,
    `description` VARCHAR(255) NULL,
    `sending_limit` INT(11) NOT NULL DEFAULT '0',
    `sendings_count` INT(11) NOT NULL DEFAULT '0',
    `sending_quota_type` enum('hourly','daily','monthly') NOT NULL DEFAULT 'hourly',
    `sending_increment_ratio` INT(11) NOT NULL DEFAULT '0',
    `sending_strategy` enum('exponential','linear') NOT NULL DEFAULT 'linear',
    `sending_limit_type` enum('total','targeted') NOT NULL DEFAULT 'total',
    `status` char(15) NOT NULL DEFAULT 'draft',
    `date_added` datetime NOT NULL,
    `last_updated` datetime NOT NULL,
    PRIMARY KEY (`plan_id`),
    KEY `fk_ds_warmup_plan_customer1_idx` (`customer_id`)
) ENGINE=InnoDB  DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci AUTO_INCREMENT=1;

CREATE TABLE `{p}delivery_server` (
  `server_id` int(11) NOT NULL AUTO_INCREMENT,
  `customer_id` INT(11) NULL DEFAULT NULL,
  `bounce_server_id` int(11) NULL,
  `tracking_domain_id` int(11) NULL,
  `warmup_plan_id` int(11) NULL,
  `type` char(20) NOT NULL,
  `name` varchar(255) NULL,
  `hostname` varchar(255) NOT NULL,
  `username` varchar(255) NOT NULL,
  `password` varchar(255) NULL,
  `port` int(5) NULL DEFAULT '25',
  `protocol` char(10) NULL,
  `timeout` int(3) NULL DEFAULT '30',
  `from_email` varchar(255) NOT NULL,
  `from_name` varchar(255) NULL,
  `reply_to_email` VARCHAR(255) NULL DEFAULT NULL,
  `probability` int(3) NOT NULL DEFAULT '100',
  `hourly_quota` int(11) NOT NULL DEFAULT '0',
  `daily_quota` int(11) NOT NULL DEFAULT '0',
  `monthly_quota` int(11) NOT NULL DEFAULT '0',
  `pause_after_send` int(11) NOT NULL DEFAULT '0',
  `meta_data` blob,
  `confirmation_key` char(40) NULL,
  `locked` enum('yes', 'no') NOT NULL DEFAULT 'no',
  `use_for` CHAR(15) NOT NULL DEFAULT 'all',
  `signing_enabled` enum('yes', 'no') NOT NULL DEFAULT 'yes',
  `force_from` VARCHAR(50) NOT NULL DEFAULT 'never',
  `force_reply_to` VARCHAR(50) NOT NULL DEFAULT 'never',
  `force_sender` enum('yes', 'no') NOT NULL DEFAULT 'no',
  `must_confirm_delivery` ENUM('yes','no') NOT NULL DEFAULT 'no',
  `max_connection_messages` INT(11) NOT NULL DEFAULT '1',
  `status` char(15) NOT NULL DEFAULT 'inactive',
  `date_added` datetime NOT NULL,
  `last_updated` datetime NOT NULL,
  PRIMARY KEY (`server_id`),
  KEY `fk_delivery_server_bounce_server1_idx` (`bounce_server_id`),
  KEY `idx_gen0` (`status`, `hourly_quota`, `probability`),
  KEY `fk_delivery_server_customer1_idx` (`customer_id`),
  KEY `fk_delivery_server_tracking_domain1_idx` (`tracking_domain_id`),
  KEY `fk_delivery_server_ds_warmup_plan1_idx` (`warmup_plan_id`)
) ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci AUTO_INCREMENT=1;

ALTER TABLE `{p}delivery_server`
  ADD CONSTRAINT `fk_delivery_server_tracking_domain1` FOREIGN KEY (`tracking_domain_id`)
    REFERENCES `{p}tracking_domain` (`domain_id`) ON DELETE SET NULL ON UPDATE NO ACTION,
  ADD CONSTRAINT `fk_delivery_server1` FOREIGN KEY (`bounce_server_id`)
    REFERENCES `{p}bounce_server` (`server_id`) ON DELETE SET NULL ON UPDATE NO ACTION,
  ADD CONSTRAINT `fk_delivery_server_ds_warmup_plan1` FOREIGN KEY (`warmup_plan_id`)
    REFERENCES `{p}delivery_server_warmup_plan` (`plan_id`) ON DELETE SET NULL ON UPDATE NO ACTION,
  ADD CONSTRAINT `fk_delivery_server_customer1` FOREIGN KEY (`customer_id`)
    REFERENCES `{p}customer` (`customer_id`) ON DELETE CASCADE ON UPDATE NO ACTION;
"""


def _binary(name: str, *fallbacks: str) -> str:
    for candidate in (name, *fallbacks):
        found = shutil.which(candidate) or (
            f"/usr/sbin/{candidate}" if Path(f"/usr/sbin/{candidate}").exists() else None
        )
        if found:
            return found
    raise RuntimeError(f"{name} not found: install the Debian package mariadb-server (make test does)")


class MariadbServer:
    """mariadbd on 127.0.0.1:<free port>, data, socket and pid file in its own temp dir; root has no password."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ee-mariadb-"))
        self.user = "mysql" if os.geteuid() == 0 else ""
        self._proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.dir / "mariadb.sock"

    def url_for(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}?charset=utf8mb4"

    def start(self) -> MariadbServer:
        data = self.dir / "data"
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        user_args = [f"--user={self.user}"] if self.user else []
        subprocess.run(
            [
                _binary("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *user_args,
            ],
            check=True,
            capture_output=True,
        )
        self._proc = subprocess.Popen(
            [
                _binary("mariadbd", "mysqld"),
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={self.socket}",
                f"--pid-file={self.dir / 'mariadbd.pid'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
                f"--log-error={self.dir / 'mariadbd.err'}",
                *user_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port) and self._ping(), 60, "mariadbd", self._proc)
        return self

    def _ping(self) -> bool:
        with pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2):
            return True

    def execute(self, sql: str, database: str | None = None) -> None:
        with (
            pymysql.connect(
                host="127.0.0.1",
                port=self.port,
                user="root",
                database=database,
                client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
            while cursor.nextset():
                pass
            connection.commit()

    def create_mailwizz_database(self, name: str, *, prefix: str = "mw_") -> str:
        """A new database with MailWizz's delivery_server table; returns its SQLAlchemy URL."""
        self.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self.execute(MAILWIZZ_DELIVERY_SERVER_DDL.replace("{p}", prefix), database=name)
        return self.url_for(name)

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
