/// A sliding-window replay filter for transport counters, after RFC 6479.
///
/// The bitmap holds `bitmapBits` bits in 64-bit words used as a ring. When the
/// highest counter moves into a new word, the words skipped over are cleared, one
/// word at a time, instead of shifting the whole bitmap. Because the word being
/// entered is cleared, only `windowSize = bitmapBits - 64` counters behind the
/// highest one are guaranteed to be remembered; anything older is refused.
///
/// A plain value: not synchronized. `Session` keeps it behind a mutex.
/// `check` and `accept` never allocate (the bitmap is allocated once at `init`).
public struct ReplayWindow: Sendable, Codable, Equatable {
    /// Bits per bitmap word.
    public static let wordBits = 64
    /// Total bits in the ring bitmap.
    public static let bitmapBits = 2048
    /// How far behind the highest accepted counter a counter may be and still be accepted:
    /// counters `c` with `highest - c < windowSize` are judged by the bitmap, older ones refused.
    public static let windowSize = bitmapBits - wordBits

    private static let wordCount = bitmapBits / wordBits

    private var bitmap: [UInt64]
    /// The highest accepted counter; meaningless while `isEmpty`.
    private var highest: UInt64 = 0
    /// No counter accepted yet (counter 0 is valid, so `highest` alone cannot say).
    private var isEmpty = true

    /// An empty window that accepts any first counter.
    public init() {
        bitmap = [UInt64](repeating: 0, count: Self.wordCount)
    }

    enum CodingKeys: String, CodingKey {
        case bitmap, highest, isEmpty
    }

    /// Decodes a window carried to another process; refuses a bitmap of the wrong size.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        bitmap = try container.decode([UInt64].self, forKey: .bitmap)
        highest = try container.decode(UInt64.self, forKey: .highest)
        isEmpty = try container.decode(Bool.self, forKey: .isEmpty)
        guard bitmap.count == Self.wordCount else {
            throw DecodingError.dataCorruptedError(forKey: .bitmap, in: container,
                                                   debugDescription: "a replay bitmap has \(Self.wordCount) words, not \(bitmap.count)")
        }
    }

    /// Whether `counter` would be accepted now. Does not record it.
    public func check(_ counter: UInt64) -> Bool {
        if isEmpty || counter > highest { return true }
        if highest - counter >= UInt64(Self.windowSize) { return false }
        let (word, mask) = Self.position(of: counter)
        return bitmap[word] & mask == 0
    }

    /// Records `counter`. Returns false, changing nothing, if it is older than the
    /// window or was already accepted.
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard check(counter) else { return false }
        if isEmpty || counter > highest {
            advance(to: counter)
        }
        let (word, mask) = Self.position(of: counter)
        bitmap[word] |= mask
        return true
    }

    /// Moves the highest counter up to `counter`, clearing the words it passes.
    private mutating func advance(to counter: UInt64) {
        let newBlock = counter / UInt64(Self.wordBits)
        let oldBlock = highest / UInt64(Self.wordBits)
        if isEmpty || newBlock - oldBlock >= UInt64(Self.wordCount) {
            for i in bitmap.indices { bitmap[i] = 0 }
        } else {
            // A while loop: iterating a ClosedRange<UInt64> allocates in unoptimized builds.
            var block = oldBlock + 1
            while block <= newBlock {
                bitmap[Int(block % UInt64(Self.wordCount))] = 0
                block += 1
            }
        }
        highest = counter
        isEmpty = false
    }

    private static func position(of counter: UInt64) -> (word: Int, mask: UInt64) {
        let block = counter / UInt64(wordBits)
        return (Int(block % UInt64(wordCount)), 1 << (counter % UInt64(wordBits)))
    }
}
