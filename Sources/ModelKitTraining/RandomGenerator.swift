/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64. Deterministic on every
/// platform, and its whole state is four UInt64 words that checkpoints can store.
public struct RandomGenerator: RandomNumberGenerator, Hashable, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    public init(seed: UInt64) {
        var mixer = seed
        func splitMix() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var z = mixer
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    /// Restores a state saved with `stateWords`.
    public init(stateWords: [UInt64]) throws {
        guard stateWords.count == 4 else {
            throw TrainingError.invalidRandomState(reason: "expected 4 words, got \(stateWords.count)")
        }
        guard stateWords.contains(where: { $0 != 0 }) else {
            throw TrainingError.invalidRandomState(reason: "the all-zero state is not allowed")
        }
        s0 = stateWords[0]
        s1 = stateWords[1]
        s2 = stateWords[2]
        s3 = stateWords[3]
    }

    public var stateWords: [UInt64] { [s0, s1, s2, s3] }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = RandomGenerator.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = RandomGenerator.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [low, high).
    @inline(__always)
    public mutating func nextFloat(in low: Float, _ high: Float) -> Float {
        low + (high - low) * nextFloat()
    }

    /// Uniform integer in 0..<bound without modulo bias (Lemire's method). bound must be > 0.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold { product = next().multipliedFullWidth(by: range) }
        }
        return Int(product.high)
    }

    /// Fisher–Yates shuffle with this generator's own integer draws, so the order depends only
    /// on the seed (not on the standard library's shuffle algorithm).
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = nextInt(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }
}

/// Weight initialisers.
public enum Initializer {
    /// Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fanIn + fanOut)).
    public static func glorotUniform(count: Int, fanIn: Int, fanOut: Int, rng: inout RandomGenerator) -> [Float] {
        let limit = (6.0 / Float(max(fanIn + fanOut, 1))).squareRoot()
        return (0..<count).map { _ in rng.nextFloat(in: -limit, limit) }
    }
}
