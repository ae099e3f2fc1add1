import CQuantumLinux

/// Names the calling thread for the kernel (`ps -T`, `top -H`, /proc/<pid>/task/*/comm), which
/// Foundation's `Thread.name` does not do on Linux. Returns false, leaving the name as it was,
/// when `name` is longer than the 15 bytes a Linux thread name holds.
@discardableResult
public func nameCurrentThread(_ name: String) -> Bool {
    qt_name_current_thread(name) == 0
}
