"""moto's S3 server, in memory."""

from __future__ import annotations

import sys

from platform_assets.stack.process import spawn
from platform_assets.stack.servers.base import Health, Server


class S3Server(Server):
    """moto's S3 server, in memory: `up` re-creates the bucket after a restart."""

    name = "s3"

    def ports(self) -> dict[str, int]:
        return {"s3": self.cfg.ports["s3"]}

    def _client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.env()["S3_ENDPOINT_URL"],
            aws_access_key_id=self.creds.s3_access_key,
            aws_secret_access_key=self.creds.s3_secret_key,
            region_name="us-east-1",
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )

    def _start(self) -> None:
        spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.cfg.ports["s3"])],
            self.log_file,
            self.pid_file,
            cwd=self.home,
        )
        self._wait_healthy(30)

    def up(self) -> str:
        state = super().up()
        client = self._client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if self.creds.s3_bucket not in existing:
            client.create_bucket(Bucket=self.creds.s3_bucket)
        return state

    def health(self) -> Health:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            buckets = self._client().list_buckets().get("Buckets", [])
        except (BotoCoreError, ClientError) as exc:
            return Health(False, f"ListBuckets failed: {type(exc).__name__}", self.pid())
        return Health(True, f"ListBuckets: {len(buckets)} bucket(s)", self.pid())

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{self.cfg.ports['s3']}",
            "S3_BUCKET": self.creds.s3_bucket,
            "AWS_ACCESS_KEY_ID": self.creds.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.creds.s3_secret_key,
            "AWS_REGION": "us-east-1",
        }
