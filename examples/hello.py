"""The tutorial's uppercase server and "Hello, server!" client, over mutual TLS.

Run: python examples/hello.py HOME   (a home with identities "server" and "alice")
"""

import asyncio
import sys

import trustwire as tw

home = tw.Home(sys.argv[1])


async def upper(conn: tw.Connection) -> None:
    async for message in conn:                 # whole messages, never partial reads
        await conn.send(message.upper())       # conn.peer: the client's verified identity


async def main() -> None:
    server = tw.Server(upper, tls=tw.ServerTLS.from_identity(home, "server"),
                       policy=tw.Policy.build(cn=["alice"]))
    (_, port), *_ = await server.start("127.0.0.1", 0)

    def client() -> None:
        with tw.connect("localhost", port, tls=tw.ClientTLS.from_identity(home, "alice")) as c:
            print("Response from server:", c.request(b"Hello, server!").decode())

    await asyncio.to_thread(client)
    await server.close()


tw.run(main)
