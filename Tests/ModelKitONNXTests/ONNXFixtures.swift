import Foundation
import ModelKitCore

/// An ONNX fixture written by Tools/make-onnx-fixtures.py: the model, its NCHW input and the
/// onnxruntime outputs.
struct ONNXReference: Decodable {
    struct Output: Decodable {
        var shape: [Int]
        var data: [Float]
    }

    var model: String
    var input_name: String
    var input_shape: [Int]
    var input: [Float]
    var outputs: [String: Output]
}

enum ONNXFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/onnx")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func reference(_ name: String) throws -> ONNXReference {
        try JSONDecoder().decode(ONNXReference.self, from: Data(contentsOf: directory.appendingPathComponent(name)))
    }
}

/// Permutes a row-major tensor: output axis i is input axis `permutation[i]`.
func permute(_ data: [Float], shape: [Int], _ permutation: [Int]) -> (data: [Float], shape: [Int]) {
    let outShape = permutation.map { shape[$0] }
    var inStrides = [Int](repeating: 1, count: shape.count)
    for axis in stride(from: shape.count - 2, through: 0, by: -1) { inStrides[axis] = inStrides[axis + 1] * shape[axis + 1] }
    var result = [Float](repeating: .nan, count: data.count)
    var index = [Int](repeating: 0, count: shape.count)
    for flat in 0..<data.count {
        var source = 0
        for axis in 0..<shape.count { source += index[axis] * inStrides[permutation[axis]] }
        result[flat] = data[source]
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < outShape[axis] { break }
            index[axis] = 0
            axis -= 1
        }
    }
    return (result, outShape)
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1).isNaN ? .infinity : abs($1.0 - $1.1)) }
}
