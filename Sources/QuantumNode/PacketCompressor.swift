import CLZ4

/// LZ4 compression of inner packets for one worker (the compression plugin): liblz4's
/// block format, with the LZ4 state and both scratch buffers allocated once, so
/// compressing and decompressing a packet allocate nothing.
///
/// Owned by one thread, like the `PacketPath` that holds it.
final class PacketCompressor {
    /// The largest inner packet: nothing decompresses to more.
    let maximumPacket: Int
    private let state: UnsafeMutableRawPointer
    private let compressed: UnsafeMutableRawPointer
    private let decompressed: UnsafeMutableRawPointer

    init(maximumPacket: Int) {
        precondition(maximumPacket > 0 && maximumPacket <= Int(LZ4_MAX_INPUT_SIZE), "packet size out of LZ4's range")
        self.maximumPacket = maximumPacket
        state = .allocate(byteCount: Int(LZ4_sizeofState()), alignment: 16)
        compressed = .allocate(byteCount: maximumPacket, alignment: 16)
        decompressed = .allocate(byteCount: maximumPacket, alignment: 16)
    }

    deinit {
        state.deallocate()
        compressed.deallocate()
        decompressed.deallocate()
    }

    /// Replaces the `length` bytes at `packet` with their LZ4 block when that is shorter.
    /// - Returns: the compressed length, or nil when compressing would not make the
    ///   packet smaller (or it is larger than `maximumPacket`); then `packet` is untouched.
    @inline(__always)
    func compressInPlace(_ packet: UnsafeMutableRawPointer, length: Int) -> Int? {
        guard length > 1, length <= maximumPacket else { return nil }
        // A destination one byte short of the input: LZ4 gives up (returns 0) rather than grow it.
        let written = LZ4_compress_fast_extState(state, packet.assumingMemoryBound(to: CChar.self),
                                                 compressed.assumingMemoryBound(to: CChar.self),
                                                 Int32(length), Int32(length - 1), 1)
        guard written > 0 else { return nil }
        packet.copyMemory(from: compressed, byteCount: Int(written))
        return Int(written)
    }

    /// Decompresses one LZ4 block into this compressor's buffer, valid until the next call.
    /// - Returns: nil when `block` is not a valid LZ4 block or would decompress to more
    ///   than `maximumPacket` bytes (LZ4_decompress_safe never writes past the buffer).
    @inline(__always)
    func decompress(_ block: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let source = block.baseAddress, !block.isEmpty else { return nil }
        let length = LZ4_decompress_safe(source.assumingMemoryBound(to: CChar.self),
                                         decompressed.assumingMemoryBound(to: CChar.self),
                                         Int32(block.count), Int32(maximumPacket))
        guard length > 0 else { return nil }
        return UnsafeRawBufferPointer(start: decompressed, count: Int(length))
    }
}
