#pragma once
// lp_anneal: the p-annealed sparsity penalty of dictionary_learning's PAnnealTrainer (Karvonen et
// al. 2024). The penalty is α · Lp(z) (loss_math::lp_sparsity, form "lp" = mean_b (Σ z^p)^(1/p) or
// "lp^p" = mean_b Σ z^p). p starts at p_start and, from anneal_start to anneal_end (fractions of
// training), steps through `updates` values linearly spaced from p_start to p_end. Whenever p
// moves to the next value, α is multiplied by mean Lp_current / mean Lp_next over the last
// `queue_length` batches, so that the penalty's size does not jump with p. With p_end = p_start it
// is the plain L1 penalty (p = 1) of the standard SAE. Its state (p, α, the queue) is checkpointed.
// The queue holds whole optimizer steps' batch means (Loss::end_step), so micro-batches and the
// ranks of a data-parallel run see one state, the one a single process with the whole batch has.
#include "saelab/core/registry.hpp"

namespace saelab::losses {

void register_p_anneal(Registrar& r);

}  // namespace saelab::losses
