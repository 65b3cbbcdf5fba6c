//! Raw libfabric bindings (filled in by the cart work).
