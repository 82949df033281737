"""Backend adapters: the contract (base), the registry that knows them, and one module per backend."""
