"""Ground-truth data sets for the deep bridge: real-file loaders and procedural stand-ins.

``load(name, data_dir=..., source="auto" | "real" | "procedural")`` is the entry point; every data set
implements :class:`AbstractDataset` and says where its images come from in ``.provenance``.
"""

from linvae.deep.data.arm import MPI3DLike as MPI3DLike
from linvae.deep.data.catalogue import NAMES as NAMES
from linvae.deep.data.catalogue import load as load
from linvae.deep.data.dataset import AbstractDataset as AbstractDataset
from linvae.deep.data.dataset import Batch as Batch
from linvae.deep.data.dataset import Provenance as Provenance
from linvae.deep.data.dataset import Stored as Stored
from linvae.deep.data.dataset import fingerprint as fingerprint
from linvae.deep.data.dataset import make_batcher as make_batcher
from linvae.deep.data.dataset import to_device as to_device
from linvae.deep.data.files import DataFileError as DataFileError
from linvae.deep.data.files import load_dsprites as load_dsprites
from linvae.deep.data.files import load_mpi3d as load_mpi3d
from linvae.deep.data.files import load_shapes3d as load_shapes3d
from linvae.deep.data.grid import DSPRITES as DSPRITES
from linvae.deep.data.grid import MPI3D as MPI3D
from linvae.deep.data.grid import SHAPES3D as SHAPES3D
from linvae.deep.data.grid import FactorGrid as FactorGrid
from linvae.deep.data.grid import factors_to_index as factors_to_index
from linvae.deep.data.grid import index_to_factors as index_to_factors
from linvae.deep.data.linear_gaussian import LinearGaussian as LinearGaussian
from linvae.deep.data.pooled import Pooled as Pooled
from linvae.deep.data.room import Shapes3DLike as Shapes3DLike
from linvae.deep.data.sprite import DSpritesReplica as DSpritesReplica
