import QuantumCommand

// Called from an async function: in top-level code the type checker picks the synchronous
// `ParsableCommand.main()`, which refuses to run an asynchronous command.
func start() async {
    await QuantumCommandLine.main()
}

await start()
