//! Run RPM scriptlets inside the tree with bubblewrap, as rpm-ostree does.
