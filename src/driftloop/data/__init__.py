"""Data: where batches come from and what is kept about them.

Sources (`sources`: files, SQL, Redis and NATS streams, HTTP, a replayed frame) turn new data
into raw batches with a fingerprint and a cursor; `profile` keeps what later batches are tested
against (bins, samples, category counts) without the training rows; `bodies`, `frames`,
`calendar` and `row_names` read uploads, parse times, derive calendar features and name rows in
messages; `elec2` loads the bundled Elec2 stream. Imports only `core` and `store`."""
