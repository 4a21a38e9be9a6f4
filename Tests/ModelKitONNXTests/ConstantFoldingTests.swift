import Testing
import ModelKitCore
@testable import ModelKitONNX

/// The import-time evaluators of shape arithmetic, against values worked out by hand.
@Suite struct ConstantFoldingTests {
    let limit = 1 << 20

    @Test func sliceClampsAndStepsBothWays() throws {
        let data = Constant(shape: [2, 5], ints: Array(0..<10))
        // Row 1, columns from 1 to the end with a huge end and step 2.
        let forward = try ConstantMath.slice(data, starts: [1, 1], ends: [2, Int64.max], axes: nil, steps: [1, 2], limit: limit)
        #expect(forward == Constant(shape: [1, 2], ints: [6, 8]))
        // Reversed columns of both rows (negative step, start past the end clamps to the last).
        let backward = try ConstantMath.slice(data, starts: [100], ends: [Int64.min + 5], axes: [-1], steps: [-2], limit: limit)
        #expect(backward == Constant(shape: [2, 3], ints: [4, 2, 0, 9, 7, 5]))
        // A step of Int64.max takes one element and does not overflow.
        let single = try ConstantMath.slice(data, starts: [0], ends: [5], axes: [1], steps: [Int64.max], limit: limit)
        #expect(single == Constant(shape: [2, 1], ints: [0, 5]))
        #expect(throws: FoldError.self) {
            try ConstantMath.slice(data, starts: [0], ends: [1], axes: [0], steps: [0], limit: limit)
        }
    }

    @Test func gatherConcatAndBroadcast() throws {
        let shape = Constant(shape: [4], ints: [dynamicBatchMarker, 16, 4, 4])
        let batch = try ConstantMath.gather(shape, indices: Constant(shape: [], ints: [0]), axis: 0, limit: limit)
        #expect(batch == Constant(shape: [], ints: [dynamicBatchMarker]))
        let last = try ConstantMath.gather(shape, indices: Constant(shape: [2], ints: [-1, 1]), axis: 0, limit: limit)
        #expect(last == Constant(shape: [2], ints: [4, 16]))
        #expect(throws: FoldError.self) {
            try ConstantMath.gather(shape, indices: Constant(shape: [1], ints: [4]), axis: 0, limit: limit)
        }
        let joined = try ConstantMath.concat([batch.reshaped([1]), Constant(shape: [1], ints: [-1])], axis: 0, limit: limit)
        #expect(joined == Constant(shape: [2], ints: [dynamicBatchMarker, -1]))
        // Products of static dims fold; arithmetic on the dynamic batch does not.
        let product = try ConstantMath.binary(.mul, Constant(shape: [2], ints: [16, 4]), Constant(shape: [], ints: [4]), limit: limit)
        #expect(product == Constant(shape: [2], ints: [64, 16]))
        #expect(throws: FoldError.self) { try ConstantMath.binary(.mul, batch, Constant(shape: [], ints: [2]), limit: limit) }
        let floats = try ConstantMath.binary(.sub, Constant(shape: [2, 1], floats: [1, 2]), Constant(shape: [3], floats: [0, 1, 2]), limit: limit)
        #expect(floats == Constant(shape: [2, 3], floats: [1, 0, -1, 2, 1, 0]))
    }

    @Test func transposeMovesElements() throws {
        let c = Constant(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        #expect(try ConstantMath.transpose(c, permutation: [1, 0]) == Constant(shape: [3, 2], floats: [1, 4, 2, 5, 3, 6]))
    }

    @Test func foldedSizesAreBounded() {
        #expect(throws: FoldError.self) {
            try ConstantMath.binary(.add, Constant(shape: [1000, 1], floats: [Float](repeating: 0, count: 1000)),
                                    Constant(shape: [1, 1000], floats: [Float](repeating: 0, count: 1000)), limit: 10_000)
        }
    }

    @Test func halfPrecisionDecoding() {
        #expect(halfToFloat(0x3C00) == 1)
        #expect(halfToFloat(0xC000) == -2)
        #expect(halfToFloat(0x0001) == Float(sign: .plus, exponent: -24, significand: 1))
        #expect(halfToFloat(0x7C00) == .infinity)
        #expect(halfToFloat(0x7E00).isNaN)
    }
}
