//! Apply overlay directories (`overlay.d/*` of the config, then
//! `overrides/rootfs`) onto the tree, in order.
