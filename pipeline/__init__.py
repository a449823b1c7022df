"""Pure pipeline logic, the Beam graph and the adapters at its edges."""
