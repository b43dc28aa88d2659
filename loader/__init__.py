"""The loader: the permit database (`store` contract, `sqlite`, `postgres`), CSV import,
the regional circuit and CUDE feeds, snapshot rebuilds, and the `watch` daemon that streams
permit changes to every replica. Imports the service's core (snapshot writer, rules), never
its HTTP side."""
