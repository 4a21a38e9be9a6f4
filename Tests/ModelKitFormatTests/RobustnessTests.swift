import ModelKitCore
import Testing
@testable import ModelKitFormat

/// Deterministic mutation runs: whatever the damage, decode either returns a model or throws a
/// FormatError (it never traps), and a model the reader accepts is one the writer accepts.
@Suite("Robustness")
struct RobustnessTests {
    static func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var copy = bytes
        switch rng.next() % 4 {
        case 0:  // flip one bit
            let index = Int(rng.next() % UInt64(copy.count))
            copy[index] ^= UInt8(1 << (rng.next() % 8))
        case 1:  // overwrite a byte with a random value
            let index = Int(rng.next() % UInt64(copy.count))
            copy[index] = UInt8(truncatingIfNeeded: rng.next())
        case 2:  // truncate
            copy.removeLast(Int(rng.next() % UInt64(copy.count)))
        default:  // insert a byte
            copy.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(copy.count + 1)))
        }
        return copy
    }

    static func check(_ file: [UInt8]) throws -> Bool {
        do {
            let model = try ModelFile.decode(file)
            // Accepted: the writer must accept it too and it must survive another round trip.
            let again = try ModelFile.decode(try ModelFile.encode(model, compressionLevel: 1))
            #expect(again.graph.nodes == model.graph.nodes)
            #expect(again.graph.inputs == model.graph.inputs)
            return true
        } catch is FormatError {
            return false
        }
    }

    @Test("mutated protobuf payloads (with valid frames) never trap", arguments: [UInt64(1), 2, 3])
    func payloadMutations(seed: UInt64) throws {
        let payload = try ProtoEncoder.encode(seed == 1 ? SampleModels.everyOp() : SampleModels.checkpoint())
        var rng = SplitMix64(seed: seed)
        var accepted = 0
        for _ in 0..<400 {
            var damaged = payload
            for _ in 0..<(1 + rng.next() % 3) { damaged = Self.mutate(damaged, &rng) }
            if try Self.check(try ModelFile.container(payload: damaged, compressionLevel: 1)) { accepted += 1 }
        }
        // Some mutations only change weight values and must still be accepted.
        #expect(accepted > 0)
        #expect(accepted < 400)
    }

    @Test("mutated files never trap")
    func fileMutations() throws {
        let file = try ModelFile.encode(SampleModels.tinyCNN(), compressionLevel: 3)
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            _ = try Self.check(Self.mutate(file, &rng))
        }
    }
}
