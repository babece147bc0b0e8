// @ts-check
// Dynacast, publisher side: the server names the simulcast layers some subscriber wants
// ('publisher_layers'); the encoder stops the others, saving the publisher's uplink and CPU.

/**
 * Sets `encodings[].active` of `sender` to match `layers` ([{rid, active}]); encodings the
 * message does not name are left alone. Resolves true when something changed.
 * @param {RTCRtpSender} sender
 * @param {{rid: string, active: boolean}[]} layers
 */
export async function applyLayerStates(sender, layers) {
  const params = sender.getParameters();
  let changed = false;
  for (const encoding of params.encodings ?? []) {
    const wanted = layers.find((l) => l.rid === encoding.rid);
    if (!wanted || encoding.active === wanted.active) continue;
    encoding.active = wanted.active;
    changed = true;
  }
  if (changed) await sender.setParameters(params);
  return changed;
}
