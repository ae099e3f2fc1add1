import QuantumCommand
import QuantumDevice

// Before any thread exists: the settings cap the arenas threads get (MallocTuning.swift).
// glibc accepts both; were it ever to refuse, the defaults only cost memory.
MallocTuning.apply()

// Called from an async function: in top-level code the type checker picks the synchronous
// `ParsableCommand.main()`, which refuses to run an asynchronous command.
func start() async {
    await QuantumCommandLine.main()
}

await start()
