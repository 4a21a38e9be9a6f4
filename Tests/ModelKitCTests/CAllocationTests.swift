import CAllocationCounter
import CModelKitAPI
import ModelKitCore
import ModelKitFormat
import Testing

/// `mk_session_run` at unchanged shapes makes no heap allocation (checked on a network whose
/// steps are all GEMM kernels; see ModelKitRuntimeParallelTests for why).
@Suite(.serialized, .disabled(if: addressSanitizerIsActive, "the counter interposes malloc, which ASan owns")) struct CAllocationTests {
    @Test(arguments: [Int32(1), 2])
    func runAllocatesNothingAfterTheFirst(threads: Int32) throws {
        var random = SystemRandomNumberGenerator()
        func floats(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [-1, 12, 12, 3])], outputs: ["y"],
            nodes: [
                Node(name: "c1", operation: .conv2D(Conv2DAttributes(padding: .same, activation: .relu)), inputs: ["x", "w1", "b1"], outputs: ["h"]),
                Node(name: "flat", operation: .flatten(axis: 1), inputs: ["h"], outputs: ["f"]),
                Node(name: "fc", operation: .dense(activation: .none), inputs: ["f", "w2", "b2"], outputs: ["y"]),
            ],
            initializers: [
                "w1": Tensor(shape: [16, 3, 3, 3], floats: floats(432)), "b1": Tensor(shape: [16], floats: floats(16)),
                "w2": Tensor(shape: [10, 2304], floats: floats(23040)), "b2": Tensor(shape: [10], floats: floats(10)),
            ])
        let bytes = try ModelFile.encode(Model(graph: graph))
        var model: OpaquePointer?
        #expect(mk_model_load_from_memory(bytes, bytes.count, &model) == MK_OK)
        defer { mk_model_free(model) }
        let session = try createSession(model!, threads: threads)
        defer { mk_session_free(session) }

        let batch = 8
        let values = floats(batch * 432)
        var scores = [Float](repeating: 0, count: batch * 10)
        try values.withUnsafeBufferPointer { source in
            var input = makeInput(source, shape: [Int64(batch), 12, 12, 3])
            try scores.withUnsafeMutableBufferPointer { destination in
                var output = mk_output()
                output.data = destination.baseAddress
                output.capacity = destination.count
                for _ in 0..<20 { #expect(mk_session_run(session, &input, 1, &output, 1) == MK_OK) }
                mk_allocations_lock()
                mk_allocations_track_this_thread(1)
                defer {
                    mk_allocations_track_this_thread(0)
                    mk_allocations_unlock()
                }
                mk_allocations_begin()
                for _ in 0..<100 { _ = mk_session_run(session, &input, 1, &output, 1) }
                let allocations = mk_allocations_end()
                // Pool workers are not tracked here; the runtime test covers them. With a pool the
                // caller may once grow its GEMM packing buffers on a larger task (see there).
                #expect(allocations <= (threads == 1 ? 0 : 2))
                // A new batch size re-plans, which does allocate: the counter is live.
                input.shape.0 = 4
                input.count = 4 * 432
                mk_allocations_begin()
                let status = mk_session_run(session, &input, 1, &output, 1)
                #expect(mk_allocations_end() > 0)
                guard status == MK_OK else { throw CAPIError(status: status, description: lastError) }
                #expect(dims(of: output) == [4, 10])
            }
        }
    }
}
