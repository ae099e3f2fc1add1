import QuantumCommand

await QuantumCommandLine.main()
