"""A lean HTTP/1.1 transport for httpx on anyio (see ``docs/http-transport.md``).

``_parse`` is the sans-I/O response parser, ``_connection`` one connection,
``_pool`` the O(1) pool, ``_transport`` the ``httpx.AsyncBaseTransport``.
"""

from ._transport import BODY_READER, LeanTransport

__all__ = ["BODY_READER", "LeanTransport"]
