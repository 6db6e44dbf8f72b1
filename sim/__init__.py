"""Co-simulation: cocotb testbenches under Verilator, checked bit for bit against golden vectors."""
