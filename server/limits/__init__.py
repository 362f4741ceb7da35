"""Rate limits counted in one place for every worker: in this process, the database, or Redis."""
