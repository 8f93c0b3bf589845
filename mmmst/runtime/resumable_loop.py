"""mmengine's epoch loop, able to stop after any iteration and to continue an epoch where it stopped."""

import torch
from mmengine.runner import EpochBasedTrainLoop

from mmmst.errors import MSTError
from mmmst.registry import LOOPS
from mmmst.runtime.random_states import WORKER_STATES_KEY, CollateWithWorkerStates, ResumedWorkerInit


class ResumeError(MSTError, ValueError):
    """A checkpoint this run cannot continue from (the message says why and what to do)."""


class EmptyEpochError(MSTError, ValueError):
    """The training data gives no batch at all (fewer samples than one batch per process, with ``drop_last``)."""


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` (same arguments) that knows its position inside an epoch, and can continue from it.

    An iteration checkpoint (``AtomicCheckpointHook(iter_interval=...)``, or one written on SIGTERM / SIGUSR1)
    stores :meth:`data_position` and each dataloader worker's random states; a resume from it continues the epoch
    with what the uninterrupted run would have seen next:

    * **the same samples in the same order**: the sampler (``ResumableSampler``) rebuilds the epoch's order from
      its seed and skips the ``consumed_batches * batch_size`` indices this process had trained on;
    * **the same crops, flips and photometric draws**: made in the main process (``num_workers=0``) they follow the
      main process's generators, restored by the checkpoint hook; made by workers, they follow the workers'
      generators, which are started in the saved states (:class:`~mmmst.runtime.random_states.ResumedWorkerInit`);
    * **the same masks**: the main process's generators. Creating a dataloader iterator draws a worker base seed
      from torch's generator; where the uninterrupted run created none (inside an epoch, or at the start of an
      epoch with ``persistent_workers``), that draw is undone.

    On the CPU a run killed after any iteration and resumed ends with the same tensors as the uninterrupted run,
    for 1 or N processes and 0 or N workers (``tests/test_preemption.py``).
    """

    def __init__(self, runner, dataloader, max_epochs, **kwargs) -> None:
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        loader = self.dataloader
        if len(loader) == 0:  # (mmengine would stop later, on an assertion about the schedulers' epoch length)
            raise EmptyEpochError(
                f'train_dataloader yields no batch: {len(loader.dataset)} samples for batch_size '
                f'{self._batch_size()} on {runner.world_size} process(es) with drop_last={loader.drop_last}; lower '
                'train_dataloader.batch_size or add data'
            )
        self.num_workers = loader.num_workers
        self.persistent_workers = loader.persistent_workers and loader.num_workers > 0
        #: batches of the current epoch this process has trained on (the index of the next batch)
        self.consumed_batches = 0
        #: per worker of the uninterrupted run (``batch_idx % num_workers``): its states after its last batch
        #: trained on, None while it has made none (fresh workers are seeded by ``worker_init_fn``)
        self.worker_states = [None] * self.num_workers
        self._workers_started = False  # persistent workers alive in this process
        self._workers_follow_order = True  # persistent worker j is the uninterrupted run's worker j
        self._warned_untracked = False
        if self.num_workers > 0:
            loader.collate_fn = CollateWithWorkerStates(loader.collate_fn)

    # ------------------------------------------------------------------ checkpoint side
    def data_position(self, epoch_complete: bool = False) -> dict:
        """Where the data stands, for a checkpoint: the epoch and the batches of it this process trained on."""
        sampler = self.dataloader.sampler
        epoch, consumed = self._epoch, self.consumed_batches
        if epoch_complete:  # an epoch checkpoint, written after the epoch
            epoch, consumed = epoch + 1, 0
        return dict(
            epoch=epoch,
            consumed_batches=consumed,
            batch_size=self._batch_size(),
            world_size=self.runner.world_size,
            num_workers=self.num_workers,
            sampler_seed=getattr(sampler, 'seed', None),
            dataset=self._dataset_signature(),
        )

    def _dataset_signature(self) -> dict:
        """The training set's size and a digest of its file list (order included), computed once per run."""
        if getattr(self, '_signature', None) is None:
            import hashlib

            dataset = self.dataloader.dataset
            digest = hashlib.sha1()
            for i in range(len(dataset)):
                info = dataset.get_data_info(i) if hasattr(dataset, 'get_data_info') else {}
                digest.update(str(info.get('img_path', i)).encode() + b'\0')
            self._signature = dict(size=len(dataset), files=digest.hexdigest())
        return self._signature

    def resume_data_position(self, position: dict, worker_states=None) -> None:
        """Continue from a checkpoint's :meth:`data_position` and this process's saved worker states.

        ``worker_states`` is None when the checkpoint's random states are not used (another process count): the
        remaining part of the epoch is then as long as it was, drawn from a re-seeded order.
        """
        logger = self.runner.logger
        epoch = position['epoch']  # (the Runner sets the loop's epoch from the checkpoint's meta after this call)
        consumed = position['consumed_batches']
        if position['world_size'] != self.runner.world_size or position['batch_size'] != self._batch_size():
            samples = consumed * position['batch_size'] * position['world_size']
            consumed = min(samples // (self._batch_size() * self.runner.world_size), len(self.dataloader))
            worker_states = None
            logger.warning(
                f'the checkpoint was written by {position["world_size"]} process(es) x batch '
                f'{position["batch_size"]}, this run has {self.runner.world_size} x {self._batch_size()}: epoch '
                f'{epoch + 1} continues after {consumed} batch(es) with a re-seeded order, not exactly'
            )
        saved = position.get('dataset')
        if saved is not None and consumed and saved != self._dataset_signature():
            now = self._dataset_signature()
            change = (
                f'{saved["size"]} samples then, {now["size"]} now'
                if saved['size'] != now['size']
                else f'the same {now["size"]} samples count, other files or another order'
            )
            logger.warning(
                f'the training set has changed since the checkpoint ({change}): epoch {epoch + 1} continues after '
                f'{consumed} batch(es) of an order drawn over the new set, so some of its images may come twice or '
                'not at all in this epoch; the epochs after it are whole'
            )
        sampler = self.dataloader.sampler
        if consumed and not hasattr(sampler, 'start_at'):
            raise ResumeError(
                f'the checkpoint was written in the middle of epoch {epoch + 1}, and '
                f'train_dataloader.sampler ({type(sampler).__name__}) cannot start there; use '
                "sampler=dict(type='ResumableSampler', ...) (DefaultSampler's arguments) or resume from an epoch "
                'checkpoint'
            )
        if position.get('sampler_seed') is not None and hasattr(sampler, 'seed'):
            sampler.seed = position['sampler_seed']
        self.consumed_batches = consumed
        if worker_states is not None and len(worker_states) == self.num_workers:
            self.worker_states = list(worker_states)
        elif worker_states is not None:  # (None: another process count, already said)
            logger.warning(
                f'the checkpoint holds the random states of {len(worker_states)} dataloader worker(s), this run '
                f'has {self.num_workers}: the augmentations after the resume are re-seeded, not continued'
            )
        if consumed:
            logger.info(f'continuing epoch {epoch + 1} after its first {consumed} batch(es)')

    # ------------------------------------------------------------------ the loop
    def run_epoch(self) -> None:
        """Iterate one epoch, or what is left of it."""
        self.runner.call_hook('before_train_epoch')  # DistSamplerSeedHook sets the sampler's epoch here
        self.runner.model.train()
        start = self.consumed_batches
        if start:  # (a last, partial batch: at most the whole share)
            sampler = self.dataloader.sampler
            sampler.start_at(min(start * self._batch_size(), len(sampler)))
        for idx, data_batch in enumerate(self._epoch_iterator(start), start):
            self._take_worker_states(idx, data_batch)
            self.consumed_batches = idx + 1  # before the hooks: a checkpoint in after_train_iter counts this one
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self.consumed_batches = 0

    def _epoch_iterator(self, start: int):
        """The dataloader's iterator for this epoch, as the uninterrupted run would have had it from batch
        ``start`` on."""
        loader = self.dataloader
        if self.num_workers == 0:
            return self._iter_keeping_torch_state(undo=start > 0)
        if self.persistent_workers and self._workers_started and self._workers_follow_order and start == 0:
            return iter(loader)  # the live workers continue, as in the uninterrupted run (no seed is drawn)
        if self.persistent_workers:
            # the first start in this process (a resume), or after a resumed epoch that began at another worker:
            # (re)start the workers as the uninterrupted run's, which were started once, at epoch 0
            loader._iterator = None  # shuts down workers of a resumed epoch; nothing else reads or keeps it
            undo = not (self._epoch == 0 and start == 0)
        else:
            if start == 0:  # fresh workers each epoch, seeded by worker_init_fn
                self.worker_states = [None] * self.num_workers
            undo = start > 0
        plain_init = loader.worker_init_fn
        loader.worker_init_fn = ResumedWorkerInit(plain_init, list(self.worker_states), start)
        try:
            iterator = self._iter_keeping_torch_state(undo)
        finally:
            loader.worker_init_fn = plain_init
        self._workers_started = True
        self._workers_follow_order = start % self.num_workers == 0
        return iterator

    def _iter_keeping_torch_state(self, undo: bool):
        state = torch.get_rng_state()
        iterator = iter(self.dataloader)  # draws the workers' base seed from torch's generator
        if undo:
            torch.set_rng_state(state)
        return iterator

    def _take_worker_states(self, idx: int, data_batch) -> None:
        if self.num_workers == 0:
            return
        states = data_batch.pop(WORKER_STATES_KEY, None) if isinstance(data_batch, dict) else None
        if states is not None:
            self.worker_states[idx % self.num_workers] = states
        elif not self._warned_untracked:
            self._warned_untracked = True
            self.runner.logger.warning(
                f'{type(self).__name__}: the collate_fn returns a {type(data_batch).__name__}, not a dict, so the '
                "dataloader workers' random states are not tracked; a resume will re-seed the augmentations"
            )

    def _batch_size(self) -> int:
        loader = self.dataloader
        return loader.batch_size if loader.batch_size is not None else loader.batch_sampler.batch_size
