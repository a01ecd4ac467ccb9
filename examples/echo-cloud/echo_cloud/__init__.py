"""A Sipp provider driver for the imaginary echo-cloud API (contract v2)."""

from ._driver import (
    EchoCloudDriver,
    EchoCloudFactory,
    EchoCloudOptions,
    EchoCloudStats,
    echo_cloud_driver,
)

__all__ = [
    "EchoCloudDriver",
    "EchoCloudFactory",
    "EchoCloudOptions",
    "EchoCloudStats",
    "echo_cloud_driver",
]
